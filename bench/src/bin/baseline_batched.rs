//! Baseline (fair): the plain axum 0.8 + `tokio::sync::broadcast` server a
//! careful engineer writes in sixty lines. It re-broadcasts every
//! `broadcast` notify as a `message` notify, like the naive baseline, but:
//!
//! - `TCP_NODELAY` on every accepted socket (no Nagle delay on small
//!   frames);
//! - each connection's writer drains everything the channel holds for it
//!   with `feed` and flushes once (one write for a burst, not one per
//!   frame);
//! - a channel that holds the bench's whole burst (`--capacity`), so a
//!   receiver that is briefly behind loses nothing.
//!
//! Frames are read and written with the `shared` codec (the seed profile).
//! `baseline-batched --addr 127.0.0.1:0 [--capacity N]`; prints
//! `listening on http://ADDR`.

use axum::{
    Router,
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::Response,
    routing::get,
    serve::ListenerExt,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use shared::{Frame, Name, SUBPROTOCOL};
use std::net::SocketAddr;
use tokio::sync::broadcast::{self, error::TryRecvError};

/// Messages the channel holds for a receiver that is behind.
const CAPACITY: usize = 16_384;

async fn upgrade(State(tx): State<broadcast::Sender<Bytes>>, ws: WebSocketUpgrade) -> Response {
    ws.protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| handle(socket, tx))
}

/// Sends what arrives, a burst at a time: the first frame, then whatever
/// else is already queued, then one flush. `false` once the peer is gone.
async fn write(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut broadcast::Receiver<Bytes>,
) -> bool {
    let first = loop {
        match rx.recv().await {
            Ok(frame) => break frame,
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    };
    if sink.feed(Message::Binary(first)).await.is_err() {
        return false;
    }
    loop {
        match rx.try_recv() {
            Ok(frame) => {
                if sink.feed(Message::Binary(frame)).await.is_err() {
                    return false;
                }
            }
            Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Closed) => return false,
        }
    }
    sink.flush().await.is_ok()
}

async fn handle(socket: WebSocket, tx: broadcast::Sender<Bytes>) {
    let mut rx = tx.subscribe();
    let (mut sink, mut stream) = socket.split();
    let forward = tokio::spawn(async move { while write(&mut sink, &mut rx).await {} });
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
    let listener = listener.tap_io(|tcp| {
        // Best effort: a socket without it is still served.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
