//! Baseline (naive): a plain axum 0.8 WebSocket server that re-broadcasts every
//! `broadcast` notify as a `message` notify through `tokio::sync::broadcast`,
//! with default settings (axum's default buffers, one channel). Frames are
//! read and written with the `shared` codec, so it speaks the seed profile.
//! A receiver that lags behind the channel loses messages (that is how
//! `tokio::sync::broadcast` works); the bench counts them. It flushes the
//! socket after every frame and leaves Nagle on: kept as the naive
//! baseline; `baseline-batched` is the fair one the targets use.
//!
//! `baseline-broadcast --addr 127.0.0.1:0 [--capacity N]`; prints `listening on http://ADDR`.

use axum::{
    Router,
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::Response,
    routing::get,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use shared::{Frame, Name, SUBPROTOCOL};
use std::net::SocketAddr;
use tokio::sync::broadcast;

/// Messages the channel holds for a receiver that is behind: enough for
/// the bench's whole burst, so this baseline loses nothing in it and its
/// figures are its best (`--capacity` to change).
const CAPACITY: usize = 16_384;

async fn upgrade(State(tx): State<broadcast::Sender<Bytes>>, ws: WebSocketUpgrade) -> Response {
    ws.protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| handle(socket, tx))
}

async fn handle(socket: WebSocket, tx: broadcast::Sender<Bytes>) {
    let mut rx = tx.subscribe();
    let (mut sink, mut stream) = socket.split();
    let forward = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(frame) => {
                    if sink.send(Message::Binary(frame)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Binary(bytes) = msg
            && let Ok(Frame::Notify { name, payload }) = Frame::decode(&bytes)
            && name.as_str() == "broadcast"
        {
            let frame = Frame::notify(Name::from_static("message"), payload).encode();
            let _ = tx.send(frame);
        }
    }
    forward.abort();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = bench::arg_value("--addr")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()?;
    let capacity = bench::arg_value("--capacity")
        .and_then(|c| c.parse().ok())
        .unwrap_or(CAPACITY);
    let (tx, _) = broadcast::channel(capacity);
    let app = Router::new().route("/socket", get(upgrade)).with_state(tx);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    bench::announce(listener.local_addr()?)?;
    axum::serve(listener, app).await?;
    Ok(())
}
