//! The browser app, embedded at build time (see `build.rs`): content types,
//! precompressed bodies, ETag/304, long caching for hashed assets, no-cache
//! for `index.html`, and a Content-Security-Policy that allows only what the
//! app needs. Without an embedded bundle, `/` says how to build one.
//!
//! The server serves [`Bundle::EMBEDDED`]; a [`Bundle`] can also be made of
//! other files, so tests can serve a bundle they know, or none at all,
//! whatever this build embedded.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

/// One file of a bundle.
pub struct Asset {
    /// Its URL path (`/index.html`).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its strong `ETag`, quotes included.
    pub etag: &'static str,
    /// Whether its name carries a content hash (then it may be cached forever).
    pub immutable: bool,
    /// Its bytes.
    pub body: &'static [u8],
    /// The same bytes gzipped, when the build made them.
    pub gzip: Option<&'static [u8]>,
    /// The same bytes compressed with brotli, when the build made them.
    pub brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The files the server serves, and the SHA-256 of each inline `<script>`
/// of their `index.html` (allowed by the Content-Security-Policy).
#[derive(Clone, Copy)]
pub struct Bundle {
    /// The files; none when no bundle was built.
    pub assets: &'static [Asset],
    /// `'sha256-…'` CSP source values, in the order of the scripts.
    pub script_hashes: &'static [&'static str],
}

impl Bundle {
    /// The bundle embedded at build time (empty without one).
    pub const EMBEDDED: Self = Self {
        assets: ASSETS,
        script_hashes: SCRIPT_HASHES,
    };

    /// Whether it has no files (the server then says how to build them).
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// The Content-Security-Policy sent with its HTML.
    pub fn content_security_policy(&self) -> String {
        let scripts = self.script_hashes.join(" ");
        format!(
            "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {scripts}; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    }
}

// `is_hashed`, as `build.rs` uses it to mark files `immutable`.
include!("hashed_name.rs");

/// Whether the server carries the browser app.
pub fn bundle_embedded() -> bool {
    !Bundle::EMBEDDED.is_empty()
}

const NOT_BUILT: &str = "This server was built without the chat app's browser bundle.\n\n\
Build the bundle, then the server:\n\n    trunk build --release\n    cargo build --release -p server\n\n\
or simply run scripts/run.sh, which does both. The WebSocket endpoint /socket works either way.\n";

fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut pieces = part.split(';');
            let name = pieces.next().unwrap_or_default().trim();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case(coding) && !refused
        })
}

/// Serves the embedded app; anything else under `/` is 404.
pub(crate) async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    Bundle::EMBEDDED.respond(&method, &uri, &headers)
}

impl Bundle {
    /// The answer to a request for `uri`: a file of the bundle, 304 when
    /// the client's copy is current, 404 for anything else, 405 for methods
    /// other than GET and HEAD; without files, 503 at `/` with how to build
    /// them.
    pub fn respond(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        if method != Method::GET && method != Method::HEAD {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET, HEAD")],
                "only GET and HEAD\n",
            )
                .into_response();
        }
        let path = match uri.path() {
            "/" => "/index.html",
            other => other,
        };
        if self.assets.is_empty() {
            let status = if path == "/index.html" {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::NOT_FOUND
            };
            return (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                NOT_BUILT,
            )
                .into_response();
        }
        let Some(asset) = self.assets.iter().find(|a| a.path == path) else {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "not found\n",
            )
                .into_response();
        };
        let cache = if asset.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let mut response = Response::builder()
            .header(header::ETAG, asset.etag)
            .header(header::CACHE_CONTROL, cache)
            .header(header::VARY, "Accept-Encoding")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if asset.content_type.starts_with("text/html") {
            response = response
                .header(
                    header::CONTENT_SECURITY_POLICY,
                    self.content_security_policy(),
                )
                .header(header::REFERRER_POLICY, "no-referrer");
        }
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                // Weak comparison, as If-None-Match asks (RFC 9110 13.1.2).
                v.split(',')
                    .map(str::trim)
                    .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == asset.etag)
            });
        if fresh {
            return response
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        let (body, coding) = match (asset.brotli, asset.gzip) {
            (Some(br), _) if accepts(headers, "br") => (br, Some("br")),
            (_, Some(gz)) if accepts(headers, "gzip") => (gz, Some("gzip")),
            _ => (asset.body, None),
        };
        response = response
            .header(header::CONTENT_TYPE, asset.content_type)
            .header(header::CONTENT_LENGTH, body.len());
        if let Some(coding) = coding {
            response = response.header(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(body)
        };
        response
            .status(StatusCode::OK)
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}
