//! The web serving the README describes ("The app"): content types,
//! precompressed bodies (`br`, `gzip`) and their negotiation, ETag/304,
//! `immutable` caching for hashed assets and `no-cache` for `index.html`,
//! the Content-Security-Policy, and the page of a server built without the
//! bundle. Every request goes over a real socket as raw HTTP/1.1, so what is
//! checked is what a browser gets.
//!
//! Whether a bundle is embedded is decided when the server is compiled, and
//! one test binary sees only one of the two states. So:
//!
//! - The tests named `embedded_…` run the real server (the app's router,
//!   `TestServer`) with the bundle this build embedded. The test command
//!   (`scripts/test.sh`) always builds the bundle (`scripts/bundle.sh`)
//!   before `cargo test`, so they require it: without one they fail, saying
//!   how to build it. They never pass by skipping.
//! - The others serve [`Bundle`] values made here through
//!   [`Bundle::respond`], the function the server serves the embedded one
//!   with: an empty bundle (the page a server built without the bundle
//!   shows, which a build with the bundle can show no other way) and a
//!   fixture whose names and bytes are known, for what the real bundle may
//!   not have (a file with gzip only, an unhashed file that is not HTML,
//!   the CSP with known hashes). Its "compressed" bodies are markers, so a
//!   test sees exactly which body was sent; the real `.br` and `.gz` bodies
//!   are decompressed in the `embedded_…` tests.

mod common;

use axum::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use common::{TestServer, WAIT, config};
use server::web::{Asset, Bundle};
use sha2::{Digest, Sha256};
use std::{io::Read, net::SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- HTTP ----

/// One response, as read off the socket.
struct Reply {
    status: u16,
    /// Names lowercased, in the order sent.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// The one value of header `name`; `None` when absent, a failure when
    /// sent more than once.
    fn header(&self, name: &str) -> Option<&str> {
        let all: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(all.len() <= 1, "{name} sent {} times: {all:?}", all.len());
        all.first().copied()
    }

    fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// `method path` with `headers` over a fresh connection (`Connection:
/// close`, read to its end).
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .expect("the answer comes in time")
        .expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(&raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("an ASCII head");
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("name: value");
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body,
    };
    assert_eq!(
        reply.header("transfer-encoding"),
        None,
        "a plain body, never chunked"
    );
    if method == "HEAD" || status == 304 {
        assert!(reply.body.is_empty(), "{method} {status}: no body");
    } else {
        let length: usize = reply
            .must("content-length")
            .parse()
            .expect("a numeric Content-Length");
        assert_eq!(length, reply.body.len(), "Content-Length is the body's");
    }
    reply
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", path, headers).await
}

/// Serves `bundle` alone, as the server serves the embedded one.
async fn serve(bundle: Bundle) -> SocketAddr {
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap| async move {
            bundle.respond(&method, &uri, &headers)
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

// ------------------------------------------------------ what is expected --

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const HTML: &str = "text/html; charset=utf-8";
const PLAIN: &str = "text/plain; charset=utf-8";

/// The policy for an `index.html` whose inline scripts hash to `hashes`.
fn policy(hashes: &[String]) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {}; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        hashes.join(" ")
    )
}

/// The text of every inline `<script>` (one without `src`) of `html`.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut scripts = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<script") {
        let tag_and_after = &rest[at..];
        let open_end = tag_and_after.find('>').expect("the tag ends");
        let tag = &tag_and_after[..open_end];
        let after = &tag_and_after[open_end + 1..];
        let close = after.find("</script>").expect("the script ends");
        let has_src = tag
            .split_ascii_whitespace()
            .any(|attribute| attribute.starts_with("src="));
        if !has_src {
            scripts.push(&after[..close]);
        }
        rest = &after[close..];
    }
    scripts
}

fn csp_hash(script: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()))
    )
}

/// The content type each kind of file must have.
fn content_type_for(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => HTML,
        Some("wasm") => "application/wasm",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => {
            panic!("{path}: a kind of file these tests do not know; say what it must be served as")
        }
    }
}

/// Whether the name has the form trunk gives hashed files: `stem-<hash>.ext`
/// or `stem-<hash>_bg.wasm`, the hash a u64 in hex without leading zeros.
fn trunk_hashed(path: &str) -> bool {
    let name = path.trim_start_matches('/');
    let stem = name.split('.').next().unwrap_or_default();
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        (1..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A strong ETag made of the first 12 bytes of the body's SHA-256.
fn etag_of(body: &[u8]) -> String {
    let hex: String = Sha256::digest(body)[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip stream");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("a brotli stream");
    out
}

// ------------------------------------------------- the embedded bundle ----

/// The bundle this build embedded, which must be there: `scripts/test.sh`
/// builds it before `cargo test`.
fn embedded() -> &'static [Asset] {
    assert!(
        server::web::bundle_embedded(),
        "this server was compiled without the browser bundle (no dist/index.html when its \
         build script ran), so what the README promises of the embedded app cannot be tested. \
         Build the bundle with scripts/bundle.sh (scripts/test.sh does it before cargo test), \
         then run the tests again"
    );
    Bundle::EMBEDDED.assets
}

/// The one embedded file whose name ends with `ending`.
fn one(assets: &'static [Asset], ending: &str) -> &'static Asset {
    let found: Vec<&Asset> = assets.iter().filter(|a| a.path.ends_with(ending)).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one embedded *{ending}: {:?}",
        assets.iter().map(|a| a.path).collect::<Vec<_>>()
    );
    found[0]
}

#[tokio::test]
async fn embedded_bundle_is_there_and_healthz_says_so() {
    let assets = embedded();
    let paths: Vec<&str> = assets.iter().map(|a| a.path).collect();
    assert!(paths.contains(&"/index.html"), "{paths:?}");
    for ending in ["_bg.wasm", ".js", ".css"] {
        one(assets, ending);
    }
    let server = TestServer::start(config()).await;
    let (status, body) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["bundle"], serde_json::Value::Bool(true), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn embedded_index_is_served_at_root_and_by_name_revalidated_with_its_policy() {
    let index = one(embedded(), "/index.html");
    let server = TestServer::start(config()).await;
    let html = std::str::from_utf8(index.body).expect("index.html is UTF-8");
    let scripts = inline_scripts(html);
    assert!(
        !scripts.is_empty(),
        "trunk's inline loader is in index.html: {html}"
    );
    let hashes: Vec<String> = scripts.iter().map(|s| csp_hash(s)).collect();
    for path in ["/", "/index.html", "/?from=link", "/index.html?v=2"] {
        let reply = get(server.addr, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, index.body, "{path} is index.html");
        assert_eq!(reply.must("content-type"), HTML, "{path}");
        assert_eq!(reply.must("cache-control"), "no-cache", "{path}");
        assert_eq!(reply.must("etag"), etag_of(index.body), "{path}");
        assert_eq!(reply.must("vary"), "Accept-Encoding", "{path}");
        assert_eq!(reply.must("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(reply.must("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(reply.header("content-encoding"), None, "{path}");
        // Exactly the app's own scripts, trunk's inline loader by the
        // hash of the very text served, styles and socket: no other
        // source, and no 'unsafe-inline'.
        assert_eq!(
            reply.must("content-security-policy"),
            policy(&hashes),
            "{path}"
        );
        let served_scripts = inline_scripts(reply.text());
        assert_eq!(served_scripts, scripts, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn embedded_hashed_assets_have_their_content_type_and_are_cached_forever() {
    let assets = embedded();
    let server = TestServer::start(config()).await;
    for asset in assets {
        let reply = get(server.addr, asset.path, &[]).await;
        assert_eq!(reply.status, 200, "{}", asset.path);
        assert_eq!(reply.body, asset.body, "{}", asset.path);
        assert_eq!(
            reply.must("content-type"),
            content_type_for(asset.path),
            "{}",
            asset.path
        );
        assert_eq!(reply.must("etag"), etag_of(&reply.body), "{}", asset.path);
        assert_eq!(
            reply.must("x-content-type-options"),
            "nosniff",
            "{}",
            asset.path
        );
        if asset.path == "/index.html" {
            assert!(!trunk_hashed(asset.path));
            assert_eq!(reply.must("cache-control"), "no-cache");
        } else {
            // trunk hashes every file it writes but index.html (filehash).
            assert!(
                trunk_hashed(asset.path),
                "{} has a content hash",
                asset.path
            );
            assert_eq!(reply.must("cache-control"), IMMUTABLE, "{}", asset.path);
            assert_eq!(
                reply.header("content-security-policy"),
                None,
                "{}: the policy goes with HTML only",
                asset.path
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn embedded_brotli_and_gzip_are_negotiated_and_decompress_to_the_file() {
    let assets = embedded();
    let server = TestServer::start(config()).await;
    for ending in ["/index.html", "_bg.wasm", ".js", ".css"] {
        let asset = one(assets, ending);
        let path = asset.path;
        let identity = get(server.addr, path, &[]).await;
        assert_eq!(identity.status, 200);
        assert_eq!(identity.header("content-encoding"), None, "{path}");
        assert_eq!(identity.body, asset.body, "{path}");
        let etag = identity.must("etag").to_owned();
        // (Accept-Encoding, the coding sent)
        let cases: [(&str, Option<&str>); 11] = [
            ("br", Some("br")),
            ("gzip", Some("gzip")),
            ("gzip, deflate, br, zstd", Some("br")),
            ("gzip;q=1.0, br;q=0.5", Some("br")),
            ("br;q=0, gzip", Some("gzip")),
            ("br;q=0", None),
            ("gzip;q=0", None),
            ("br;q=0, gzip;q=0", None),
            ("identity", None),
            ("deflate", None),
            ("", None),
        ];
        for (accept, coding) in cases {
            let reply = if accept.is_empty() {
                get(server.addr, path, &[]).await
            } else {
                get(server.addr, path, &[("Accept-Encoding", accept)]).await
            };
            assert_eq!(reply.status, 200, "{path} {accept:?}");
            assert_eq!(
                reply.header("content-encoding"),
                coding,
                "{path} {accept:?}"
            );
            assert_eq!(reply.must("vary"), "Accept-Encoding", "{path} {accept:?}");
            assert_eq!(reply.must("etag"), etag, "{path} {accept:?}");
            assert_eq!(
                reply.must("content-type"),
                content_type_for(path),
                "{path} {accept:?}"
            );
            match coding {
                Some("br") => {
                    assert_eq!(Some(reply.body.as_slice()), asset.brotli, "{path}");
                    assert_eq!(unbrotli(&reply.body), identity.body, "{path} {accept:?}");
                }
                Some("gzip") => {
                    assert_eq!(Some(reply.body.as_slice()), asset.gzip, "{path}");
                    assert_eq!(gunzip(&reply.body), identity.body, "{path} {accept:?}");
                }
                _ => assert_eq!(reply.body, identity.body, "{path} {accept:?}"),
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn embedded_etag_revalidation_answers_304_without_a_body() {
    let assets = embedded();
    let server = TestServer::start(config()).await;
    for ending in ["/index.html", "_bg.wasm", ".js"] {
        let asset = one(assets, ending);
        let path = asset.path;
        let full = get(server.addr, path, &[]).await;
        let etag = full.must("etag").to_owned();
        assert!(
            etag.len() == 26
                && etag.starts_with('"')
                && etag.ends_with('"')
                && etag[1..25].bytes().all(|b| b.is_ascii_hexdigit()),
            "a strong, quoted ETag: {etag}"
        );
        let listed = format!("\"0123\", {etag}");
        // If-None-Match compares weakly: W/"…" matches too.
        let weak = format!("W/{etag}");
        for (if_none_match, accept) in [
            (etag.as_str(), None),
            (etag.as_str(), Some("br, gzip")),
            (listed.as_str(), None),
            (weak.as_str(), None),
            ("*", None),
        ] {
            let mut headers = vec![("If-None-Match", if_none_match)];
            if let Some(accept) = accept {
                headers.push(("Accept-Encoding", accept));
            }
            let reply = get(server.addr, path, &headers).await;
            assert_eq!(reply.status, 304, "{path} If-None-Match: {if_none_match}");
            assert!(reply.body.is_empty(), "{path}: a 304 has no body");
            assert_eq!(reply.must("etag"), etag, "{path}");
            assert_eq!(
                reply.must("cache-control"),
                full.must("cache-control"),
                "{path}"
            );
            assert_eq!(reply.must("vary"), "Accept-Encoding", "{path}");
            assert_eq!(reply.header("content-encoding"), None, "{path}");
        }
        // Another ETag (an older version of the file, or the right hex
        // without quotes) gets the whole file.
        let unquoted = etag.trim_matches('"').to_owned();
        for other in ["\"000000000000000000000000\"", unquoted.as_str()] {
            let reply = get(server.addr, path, &[("If-None-Match", other)]).await;
            assert_eq!(reply.status, 200, "{path} If-None-Match: {other}");
            assert_eq!(reply.body, asset.body, "{path}");
            assert_eq!(reply.must("etag"), etag, "{path}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn embedded_head_answers_the_headers_of_get_without_the_body() {
    let assets = embedded();
    let server = TestServer::start(config()).await;
    for (path, asset) in [
        ("/", one(assets, "/index.html")),
        (one(assets, "_bg.wasm").path, one(assets, "_bg.wasm")),
    ] {
        for accept in [None, Some("br")] {
            let headers: Vec<(&str, &str)> =
                accept.iter().map(|a| ("Accept-Encoding", *a)).collect();
            let got = get(server.addr, path, &headers).await;
            let head = request(server.addr, "HEAD", path, &headers).await;
            assert_eq!(head.status, 200, "HEAD {path}");
            assert!(head.body.is_empty(), "HEAD {path}: no body");
            for name in [
                "content-type",
                "content-length",
                "etag",
                "cache-control",
                "vary",
                "content-security-policy",
                "x-content-type-options",
            ] {
                assert_eq!(head.header(name), got.header(name), "HEAD {path}: {name}");
            }
            let expected_length = match accept {
                Some(_) => asset.brotli.expect("a .br sibling").len(),
                None => asset.body.len(),
            };
            assert_eq!(
                head.must("content-length"),
                expected_length.to_string(),
                "HEAD {path} {accept:?}"
            );
            assert_eq!(head.header("content-encoding"), accept, "HEAD {path}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn embedded_other_methods_are_405_and_unknown_paths_404() {
    let assets = embedded();
    let wasm = one(assets, "_bg.wasm").path;
    let server = TestServer::start(config()).await;
    for (method, path) in [
        ("POST", "/"),
        ("PUT", "/index.html"),
        ("DELETE", wasm),
        ("PATCH", "/nothing-here"),
        ("OPTIONS", "/"),
    ] {
        let reply = request(server.addr, method, path, &[("Content-Length", "0")]).await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method} {path}");
        assert_eq!(reply.text(), "only GET and HEAD\n", "{method} {path}");
        assert_eq!(reply.header("etag"), None, "{method} {path}");
    }
    let unhashed = wasm
        .rsplit_once('-')
        .map(|(stem, _)| format!("{stem}_bg.wasm"))
        .expect("a hashed name");
    for path in [
        "/nothing-here",
        "/index.htm",
        "/INDEX.HTML",
        "/index.html/",
        "/dist/index.html",
        unhashed.as_str(),
        "/frontend.js",
    ] {
        let reply = get(server.addr, path, &[]).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.must("content-type"), PLAIN, "{path}");
        assert_eq!(reply.text(), "not found\n", "{path}");
        assert_eq!(reply.header("cache-control"), None, "{path}");
        assert_eq!(reply.header("etag"), None, "{path}");
    }
    server.stop().await;
}

// ------------------------------------------------------- no bundle --------

#[tokio::test]
async fn a_server_built_without_the_bundle_says_at_root_how_to_build_it() {
    const HOW: &str = "This server was built without the chat app's browser bundle.\n\n\
        Build the bundle, then the server:\n\n    trunk build --release\n    \
        cargo build --release -p server\n\n\
        or simply run scripts/run.sh, which does both. \
        The WebSocket endpoint /socket works either way.\n";
    let empty = Bundle {
        assets: &[],
        script_hashes: &[],
    };
    assert!(empty.is_empty());
    let addr = serve(empty).await;
    for (path, status) in [
        ("/", 503),
        ("/index.html", 503),
        ("/?x=1", 503),
        ("/frontend-0123456789abcdef.js", 404),
        ("/anything", 404),
    ] {
        for accept in [None, Some("br, gzip")] {
            let headers: Vec<(&str, &str)> =
                accept.iter().map(|a| ("Accept-Encoding", *a)).collect();
            let reply = get(addr, path, &headers).await;
            assert_eq!(reply.status, status, "{path}");
            assert_eq!(reply.must("content-type"), PLAIN, "{path}");
            assert_eq!(reply.text(), HOW, "{path}");
            assert_eq!(reply.header("content-encoding"), None, "{path}");
            // Nothing that would keep the page once a bundle is built.
            assert_eq!(reply.header("etag"), None, "{path}");
            assert_eq!(reply.header("cache-control"), None, "{path}");
        }
    }
    let head = request(addr, "HEAD", "/", &[]).await;
    assert_eq!(head.status, 503);
    assert_eq!(head.must("content-length"), HOW.len().to_string());
    let post = request(addr, "POST", "/", &[("Content-Length", "0")]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.text(), "only GET and HEAD\n");
}

// ---------------------------------------------------------- fixture -------

static FIXTURE_ASSETS: &[Asset] = &[
    Asset {
        path: "/index.html",
        content_type: HTML,
        etag: "\"index-1\"",
        immutable: false,
        body: b"<!doctype html><title>fixture</title>",
        gzip: Some(b"gzip of index.html"),
        brotli: Some(b"br of index.html"),
    },
    Asset {
        path: "/app-0123456789abcdef.js",
        content_type: "text/javascript; charset=utf-8",
        etag: "\"app-1\"",
        immutable: true,
        body: b"export const answer = 42;\n",
        gzip: Some(b"gzip of app.js"),
        brotli: None,
    },
    Asset {
        path: "/robots.txt",
        content_type: PLAIN,
        etag: "\"robots-1\"",
        immutable: false,
        body: b"User-agent: *\n",
        gzip: None,
        brotli: None,
    },
];

const FIXTURE: Bundle = Bundle {
    assets: FIXTURE_ASSETS,
    script_hashes: &["'sha256-AAAA'", "'sha256-BBBB'"],
};

#[tokio::test]
async fn the_policy_is_exactly_the_apps_own_sources_and_goes_with_html_only() {
    let addr = serve(FIXTURE).await;
    let index = get(addr, "/", &[]).await;
    assert_eq!(
        index.must("content-security-policy"),
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'sha256-AAAA' 'sha256-BBBB'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    );
    assert_eq!(index.must("referrer-policy"), "no-referrer");
    for path in ["/app-0123456789abcdef.js", "/robots.txt"] {
        let reply = get(addr, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-security-policy"), None, "{path}");
        assert_eq!(reply.header("referrer-policy"), None, "{path}");
    }
}

#[tokio::test]
async fn caching_follows_the_hash_in_the_name() {
    let addr = serve(FIXTURE).await;
    for (path, cache, content_type) in [
        ("/", "no-cache", HTML),
        (
            "/app-0123456789abcdef.js",
            IMMUTABLE,
            "text/javascript; charset=utf-8",
        ),
        ("/robots.txt", "no-cache", PLAIN),
    ] {
        let reply = get(addr, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.must("cache-control"), cache, "{path}");
        assert_eq!(reply.must("content-type"), content_type, "{path}");
        assert_eq!(reply.must("x-content-type-options"), "nosniff", "{path}");
    }
}

/// A path, its `Accept-Encoding` lines, the coding sent and the body sent.
type Case = (
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    &'static [u8],
);

#[tokio::test]
async fn negotiation_sends_what_the_file_has_and_the_client_takes() {
    let addr = serve(FIXTURE).await;
    let js = "/app-0123456789abcdef.js";
    let cases: [Case; 14] = [
        ("/", &["br"], Some("br"), b"br of index.html"),
        ("/", &["BR"], Some("br"), b"br of index.html"),
        ("/", &["gzip"], Some("gzip"), b"gzip of index.html"),
        (
            "/",
            &[" gzip ; q=0.5 "],
            Some("gzip"),
            b"gzip of index.html",
        ),
        ("/", &["gzip", "br"], Some("br"), b"br of index.html"),
        (
            "/",
            &["br;q=0.0, gzip"],
            Some("gzip"),
            b"gzip of index.html",
        ),
        (
            "/",
            &["br; q=0", "gzip;q=0"],
            None,
            b"<!doctype html><title>fixture</title>",
        ),
        ("/", &["*"], None, b"<!doctype html><title>fixture</title>"),
        // The file has no brotli body: gzip when taken, else identity.
        (js, &["br"], None, b"export const answer = 42;\n"),
        (js, &["br, gzip"], Some("gzip"), b"gzip of app.js"),
        (js, &["gzip;q=0, br"], None, b"export const answer = 42;\n"),
        (js, &[], None, b"export const answer = 42;\n"),
        // Neither.
        ("/robots.txt", &["br, gzip"], None, b"User-agent: *\n"),
        ("/robots.txt", &[], None, b"User-agent: *\n"),
    ];
    for (path, accept, coding, body) in cases {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept-Encoding", *a)).collect();
        let reply = get(addr, path, &headers).await;
        assert_eq!(reply.status, 200, "{path} {accept:?}");
        assert_eq!(
            reply.header("content-encoding"),
            coding,
            "{path} {accept:?}"
        );
        assert_eq!(reply.body, body, "{path} {accept:?}");
        assert_eq!(reply.must("vary"), "Accept-Encoding", "{path} {accept:?}");
    }
}

/// The rule `build.rs` marks files `immutable` by (the same code: both
/// include `src/hashed_name.rs`). trunk writes its hashes with `{:x}`, so
/// one name in 16 has fewer than 16 digits, as in the first two here (a
/// bundle trunk built): those were served `no-cache`.
#[test]
fn every_name_trunk_hashes_is_recognised_and_no_other() {
    for name in [
        "frontend-cbe858a316c9d56.js",
        "frontend-cbe858a316c9d56_bg.wasm",
        "style-ea5342526c01cf93.css",
        "frontend-0123456789abcdef_bg.wasm",
        "frontend-abcdef01.js",
        "my-app-ABCDEF0123456789.js",
    ] {
        assert!(server::web::is_hashed(name), "{name} is hashed");
    }
    for name in [
        "index.html",
        "frontend.js",
        "frontend_bg.wasm",
        "logo-cafe.png",
        "frontend-abcdef0.js",
        "frontend-0123456789abcdef0.js",
        "frontend-0123456789abcdeg.js",
        "0123456789abcdef.js",
    ] {
        assert!(!server::web::is_hashed(name), "{name} is not hashed");
    }
}
