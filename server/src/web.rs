//! The browser app, embedded at build time (see `build.rs`): content types,
//! precompressed bodies, ETag/304, long caching for hashed assets, no-cache
//! for `index.html`, and a Content-Security-Policy that allows only what the
//! app needs. Without an embedded bundle, `/` says how to build one.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

/// One embedded file.
pub(crate) struct Asset {
    path: &'static str,
    content_type: &'static str,
    etag: &'static str,
    immutable: bool,
    body: &'static [u8],
    gzip: Option<&'static [u8]>,
    brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Whether the server carries the browser app.
pub fn bundle_embedded() -> bool {
    !ASSETS.is_empty()
}

fn csp() -> String {
    let scripts = SCRIPT_HASHES.join(" ");
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {scripts}; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
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
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n").into_response();
    }
    let path = match uri.path() {
        "/" => "/index.html",
        other => other,
    };
    if ASSETS.is_empty() {
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
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
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
            .header(header::CONTENT_SECURITY_POLICY, csp())
            .header(header::REFERRER_POLICY, "no-referrer");
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    if fresh {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let (body, coding) = match (asset.brotli, asset.gzip) {
        (Some(br), _) if accepts(&headers, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(&headers, "gzip") => (gz, Some("gzip")),
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
