//! `GET /socket`: the WebSocket upgrade, with the refusal rules of the
//! protocol (426 without upgrade, 400 without the subprotocol), the origin
//! check (1008) and the connection limit (1013).

use crate::{AppState, session};
use axum::{
    extract::{
        ConnectInfo, State,
        ws::{
            CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
        },
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use shared::SUBPROTOCOL;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tracing::{debug, warn};

fn plain(status: StatusCode, reason: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reason,
    )
        .into_response()
}

fn asks_for_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("websocket"))
}

fn offers_subprotocol(ws: &WebSocketUpgrade) -> bool {
    ws.requested_protocols().any(|p| {
        p.to_str()
            .is_ok_and(|v| v.split(',').any(|p| p.trim() == SUBPROTOCOL))
    })
}

/// Same-origin (the `Origin` host equals `Host`), listed, or absent.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| origin_matches(a.trim_end_matches('/'), origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// `pattern` is an origin, or one ending in `:*` for any port of that host.
fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.strip_suffix(":*") {
        Some(host) => origin.rsplit_once(':').is_some_and(|(o, port)| {
            o.eq_ignore_ascii_case(host) && port.chars().all(|c| c.is_ascii_digit())
        }),
        None => pattern.eq_ignore_ascii_case(origin),
    }
}

/// `GET /healthz`: a small JSON status (readable cross-origin).
pub(crate) async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut body = serde_json::json!({
        "status": if app.shutdown.is_cancelled() { "stopping" } else { "ok" },
        "connections": app.stats.connections.load(Relaxed),
        "rooms": app.rooms.len(),
        "long_tasks": app.stats.long_tasks.load(Relaxed),
        "bundle": crate::web::bundle_embedded(),
    });
    if let Some(cluster) = &app.cluster {
        body["cluster"] = serde_json::json!({
            "node": cluster.node(),
            "redis": if cluster.healthy() { "ok" } else { "unreachable" },
        });
    }
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus metrics (OpenMetrics text format).
pub(crate) async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let body = app.metrics.render(
        app.stats
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        app.rooms.len(),
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn socket(
    State(app): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !asks_for_upgrade(&headers) {
        let mut response = plain(
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "/socket speaks WebSocket with the subprotocol {SUBPROTOCOL}; send an upgrade request\n"
            ),
        );
        response.headers_mut().insert(
            header::UPGRADE,
            header::HeaderValue::from_static("websocket"),
        );
        return response;
    }
    let ws = match upgrade {
        Ok(ws) => ws,
        Err(rejection) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("not a valid WebSocket upgrade: {}\n", rejection.body_text()),
            );
        }
    };
    if !offers_subprotocol(&ws) {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "this endpoint needs the WebSocket subprotocol {SUBPROTOCOL} (Sec-WebSocket-Protocol)\n"
            ),
        );
    }
    let config = &app.config;
    let ws = ws
        .protocols([SUBPROTOCOL])
        .max_message_size(config.max_message_bytes)
        .max_frame_size(config.max_message_bytes)
        .read_buffer_size(config.read_buffer_bytes)
        .write_buffer_size(8 * 1024);

    if !origin_allowed(&headers, &config.allowed_origins) {
        warn!(peer = %addr, origin = ?headers.get(header::ORIGIN), "origin not allowed");
        return ws
            .on_upgrade(|socket| refuse(socket, session::close::POLICY, "origin not allowed"));
    }
    let Ok(slot) = app.slots.clone().try_acquire_owned() else {
        warn!(peer = %addr, "connection limit reached");
        return ws.on_upgrade(|socket| {
            refuse(
                socket,
                session::close::TRY_LATER,
                "server is full; try again later",
            )
        });
    };
    let id = app.next_conn_id();
    let tracker = app.sessions.clone();
    ws.on_upgrade(move |socket| tracker.track_future(session::serve(socket, app, id, addr, slot)))
}

/// Closes a socket right after the upgrade, with a code and reason the
/// browser can show, then waits briefly for the peer's close.
async fn refuse(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    debug!(code, "refused a socket");
}

#[cfg(test)]
mod tests {
    use super::origin_matches;

    #[test]
    fn port_wildcards_match_only_that_host() {
        assert!(origin_matches(
            "http://127.0.0.1:*",
            "http://127.0.0.1:43121"
        ));
        assert!(!origin_matches(
            "http://127.0.0.1:*",
            "http://127.0.0.2:43121"
        ));
        assert!(!origin_matches(
            "http://127.0.0.1:*",
            "http://127.0.0.1:80.evil"
        ));
        assert!(origin_matches("http://a.example", "HTTP://A.EXAMPLE"));
        assert!(!origin_matches("http://a.example", "http://a.example.evil"));
    }
}
