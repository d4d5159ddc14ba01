//! The chat server: an axum app that serves `websocket.io-rpc-v0.1` at
//! `/socket` and hosts chat rooms as actors.
//!
//! - [`app`] builds the router; [`run`] serves it until a shutdown future
//!   resolves, then closes every socket with 1001. Both are what tests use.
//! - `session/`: one task per connection plus its writer; `room/`: the room
//!   actors; `history`: stored messages; `identity`: nicknames and sessions.

pub mod access;
pub mod accounts;
pub mod addr;
pub mod admin;
pub mod api;
pub mod cluster;
pub mod config;
pub mod credentials;
pub mod history;
mod http;
pub mod hub;
pub mod identity;
pub mod ids;
pub mod limits;
mod listen;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod origin;
pub mod outbox;
pub mod ring;
pub mod room;
pub mod search;
pub mod session;
pub mod sqlite;
mod state;
pub mod web;

/// Real Redis for the crate's own tests (the same file the integration
/// tests use).
#[cfg(test)]
#[path = "../tests/common/redis_server.rs"]
mod redis_server;

pub use config::Config;
pub use state::{AppState, Stats};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// The router: the WebSocket at `/socket`, the embedded app everywhere
/// else, and `/metrics` unless it has an address of its own.
pub fn app(state: Arc<AppState>) -> Router {
    let accounts = Router::new()
        .route("/api/signup", post(api::signup))
        .route("/api/signin", post(api::signin))
        .route("/api/signout", post(api::signout))
        .route("/api/signout-everywhere", post(api::signout_everywhere))
        .route("/api/password", post(api::change_password))
        .route("/api/invites", post(api::invite))
        .route("/api/admin/disable", post(api::disable))
        .route("/api/me", get(api::me))
        .layer(DefaultBodyLimit::max(api::MAX_BODY));
    let mut router = Router::new()
        .route("/socket", get(http::socket))
        .route("/healthz", get(http::healthz))
        .merge(accounts);
    if state.config.metrics_addr.is_none() {
        router = router.route("/metrics", get(http::metrics));
    }
    router.fallback(web::serve).with_state(state)
}

/// `/metrics` alone, for `--metrics-addr`.
fn metrics_app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(http::metrics))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops
/// accepting, closes every socket with 1001 and returns once they are
/// closed, or after `--shutdown-secs` whatever the peers do.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let origins = origin::Origins::new(
        &state.config.public_origins,
        &state.config.allowed_origins,
        local,
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    if origins.is_empty() {
        tracing::warn!(
            "listening on every address without --public-origin: browsers cannot open the socket"
        );
    }
    if state.config.guests == config::Guests::Deny && state.accounts.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--guests deny needs accounts, which this store does not keep",
        ));
    }
    let _ = state.origins.set(origins);
    let token = state.shutdown.clone();
    let grace = state.config.shutdown_grace();
    let metrics = match state.config.metrics_addr {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            let router = metrics_app(state.clone());
            let stop = token.clone();
            Some(tokio::spawn(async move {
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            }))
        }
        None => None,
    };
    let sweeper = tokio::spawn(state::sweep_sessions(state.clone()));
    let serving = tokio::spawn(listen::serve(
        listener,
        app(state.clone()),
        state.limits.clone(),
        token.clone(),
        grace,
    ));
    tokio::select! {
        () = shutdown => {}
        () = token.cancelled() => {}
    }
    tracing::info!("shutting down: closing every socket with 1001");
    let deadline = tokio::time::Instant::now() + grace;
    token.cancel();
    let _ = serving.await;
    state.connections.close();
    if tokio::time::timeout_at(deadline, state.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = state.connections.len(),
            "some sockets did not close by the shutdown deadline"
        );
    }
    sweeper.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    if let Some(cluster) = &state.cluster {
        cluster.shutdown().await;
    }
    // What the closing sessions handed to the store (their last saves, say)
    // is written before the process exits.
    let flush_by = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
    if let Some(flushed) = state.store.flushed()
        && tokio::time::timeout_at(flush_by, flushed).await.is_err()
    {
        tracing::warn!("the store did not finish writing by the shutdown deadline");
    }
    Ok(())
}
