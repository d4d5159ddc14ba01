//! `GET /socket`: the WebSocket upgrade, with the refusal rules of the
//! protocol (426 without upgrade, 403 from an origin that is not allowed,
//! 400 without the subprotocol) and the limits decided at the accept
//! (1013 when the server is full, 1008 when the address has too many).
//! The sign-in cookie, if any, says whose socket it is; with `--guests
//! deny` a socket without one is closed (1008).

use crate::{AppState, config::Guests, listen::Admission, session};
use axum::{
    Extension,
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

/// The close reason of a socket that is not signed in, with `--guests deny`.
pub(crate) const GUESTS_DENIED: &str = "sign in to chat here: this server does not allow guests";

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

/// `GET /healthz`: a small JSON status. Pages from the origins that may
/// open the socket (see `origin.rs`) may read it too; any other page may
/// not (no CORS header for it).
pub(crate) async fn healthz(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut body = serde_json::json!({
        "status": if app.shutdown.is_cancelled() { "stopping" } else { "ok" },
        "connections": app.stats.connections.load(Relaxed),
        "open_tcp": app.limits.open(app.config.max_connections),
        "rooms": app.rooms.len(),
        "long_tasks": app.stats.long_tasks.load(Relaxed),
        "bundle": crate::web::bundle_embedded(),
    });
    if let Some(cluster) = &app.cluster {
        body["cluster"] = serde_json::json!({
            "node": cluster.node(),
            "redis": cluster.redis_state(),
        });
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "origin"),
        ],
        body.to_string(),
    )
        .into_response();
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.to_str().is_ok_and(|o| app.origins().allows(o))
    {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    response
}

/// `GET /metrics`: Prometheus metrics (OpenMetrics text format).
pub(crate) async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let body = app.metrics.render(&crate::metrics::Gauges {
        connections: usize::try_from(
            app.stats
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
        )
        .unwrap_or(usize::MAX),
        rooms: app.rooms.len(),
        tcp_connections: app.limits.open(app.config.max_connections),
        store_queue_bytes: app.store_queue_bytes(),
    });
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
    admission: Option<Extension<Admission>>,
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
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| app.origins().allows(o))
    {
        warn!(peer = %addr, ?origin, "origin not allowed");
        return plain(
            StatusCode::FORBIDDEN,
            "this origin may not open the chat socket (see --public-origin and --allowed-origin)\n"
                .into(),
        );
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
    // A router served without the accept loop (`app` alone) admits all.
    let admission = admission.map_or(Admission::Admitted { counted: true }, |a| a.0);
    let counted = match admission {
        Admission::Refused { code, reason } => {
            return ws.on_upgrade(move |socket| refuse(socket, code, reason));
        }
        Admission::Admitted { counted } => counted,
    };
    // The sign-in cookie rides the upgrade: a signed-in socket is that
    // account from its first frame.
    let account = match crate::api::signed_in_as(&app, &headers).await {
        Ok(account) => account,
        Err(e) => {
            warn!(peer = %addr, error = %e, "cannot check a sign-in cookie");
            None
        }
    };
    if account.is_none() && app.config.guests == Guests::Deny {
        return ws.on_upgrade(|socket| refuse(socket, shared::close::POLICY, GUESTS_DENIED));
    }
    let ip = app.limits.client_ip(addr, &headers);
    // Behind a trusted proxy the address is known only now: count it here.
    let hold = if counted {
        None
    } else {
        match app.limits.addresses.connect(ip) {
            Some(token) => Some(token),
            None => {
                return ws.on_upgrade(|socket| {
                    refuse(
                        socket,
                        shared::close::POLICY,
                        "too many connections from your address",
                    )
                });
            }
        }
    };
    let id = app.next_conn_id();
    let tracker = app.connections.clone();
    let peer = session::Peer {
        addr,
        ip,
        hold,
        account: account.map(Box::new),
    };
    ws.on_upgrade(move |socket| tracker.track_future(session::serve(socket, app, id, peer)))
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
