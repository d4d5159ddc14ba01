//! One WebSocket connection: a reader loop (this task) that decodes frames
//! and dispatches them, and a writer task that drains the bounded outbox.
//!
//! Every Request gets exactly one Response unless the client resets it; work
//! that takes time runs as a task in `tasks`, and a Reset aborts that task.

mod access;
mod chat;
mod demo;
mod dispatch;
mod rooms;
mod search;
mod writer;

use crate::outbox::{self, Bounds, Ending, Kill, Outbox};
use crate::{
    AppState,
    addr::AddrToken,
    identity::Signed,
    limits::RateLimiter,
    room::{ConnId, RoomHandle},
};
use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use shared::chat::{Envelope, ErrorBody};
use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info};

/// WebSocket close codes this server sends.
pub use shared::close;

/// How long a closing connection keeps reading, so the peer's close frame
/// arrives and the close handshake completes (closing with unread input
/// makes the kernel reset the connection, and the browser sees 1006
/// instead of the code and reason).
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Who a connection is from.
pub(crate) struct Peer {
    /// The TCP peer.
    pub addr: SocketAddr,
    /// The client's address (the peer, or the one a trusted proxy names).
    pub ip: IpAddr,
    /// Its place under its address's connection limit, when it was counted
    /// at the upgrade (behind a trusted proxy); given back at the end.
    pub hold: Option<AddrToken>,
    /// The account its sign-in cookie names.
    pub account: Option<Box<Signed>>,
}

/// State of one connection, owned by its reader loop.
pub(crate) struct Conn {
    id: ConnId,
    addr: SocketAddr,
    /// The client's address: budgets are per address, not per connection.
    ip: IpAddr,
    app: Arc<AppState>,
    outbox: Outbox,
    kill: Kill,
    nick: String,
    /// The account it is signed in as (its nickname is the account's name).
    account: Option<Box<Signed>>,
    /// Hash of the session token, once the client said `hello` (the token
    /// itself is only ever in the `hello` reply).
    session: Option<String>,
    rooms: HashMap<String, RoomHandle>,
    limiter: RateLimiter,
    tasks: JoinSet<u32>,
    inflight: HashMap<u32, (tokio::task::Id, AbortHandle)>,
}

/// Runs a connection until it ends. Its place under the connection limit
/// is held by the stream itself (see `listen`). Its log lines carry the
/// connection id and peer (a span put on the future here rather than with
/// `#[instrument]`, which would keep a second copy of the arguments in every
/// connection's task).
pub(crate) fn serve(
    ws: WebSocket,
    app: Arc<AppState>,
    id: ConnId,
    peer: Peer,
) -> impl Future<Output = ()> + Send {
    use tracing::Instrument;
    let span = tracing::info_span!("conn", conn_id = id, peer = %peer.addr);
    run(ws, app, id, peer).instrument(span)
}

async fn run(ws: WebSocket, app: Arc<AppState>, id: ConnId, peer: Peer) {
    let Peer {
        addr,
        ip,
        hold: _hold,
        account,
    } = peer;
    let kill = Kill::default();
    let bounds = Bounds {
        frames: app.config.outbox_frames,
        bytes: app.config.outbox_bytes,
    };
    let (outbox, rx) = Outbox::new(bounds, kill.clone());
    let (sink, mut stream) = ws.split();
    let last_heard = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writer = tokio::spawn(writer::run(
        sink,
        rx,
        kill.clone(),
        writer::Deadlines {
            ping_every: app.config.ping_interval(),
            first_frame: app.config.first_frame_timeout(),
        },
        last_heard.clone(),
        started,
        app.metrics.clone(),
    ));

    let config = &app.config;
    // The futures awaited once, at the start and the end, are boxed: their
    // state would otherwise be part of every idle connection's task.
    let nick = match &account {
        // A registered name is never a guest's: it needs no claim.
        Some(signed) => {
            if !app.signed_in.add(signed, id, kill.clone(), outbox.clone()) {
                // Signed out between the cookie's check and now.
                kill.close(close::POLICY, crate::identity::SIGNED_OUT);
            }
            signed.name.clone()
        }
        None => match Box::pin(app.claim_free(&format!("guest-{id}"), id, None)).await {
            Some(nick) => nick,
            // Cluster mode with Redis away: a name no other process will pick.
            None => format!("guest-{:08x}", rand::random::<u32>()),
        },
    };
    let mut conn = Conn {
        id,
        addr,
        ip,
        outbox,
        kill: kill.clone(),
        nick,
        account,
        session: None,
        rooms: HashMap::new(),
        limiter: RateLimiter::new(config.rate_limit, config.burst(), config.abuse_limit()),
        tasks: JoinSet::new(),
        inflight: HashMap::new(),
        app: app.clone(),
    };
    app.stats.connections.fetch_add(1, Ordering::Relaxed);
    info!(nick = %conn.nick, "connected");
    Box::pin(conn.enter_lobby()).await;

    let max = app.config.max_message_bytes;
    let shutdown = app.shutdown.clone();
    // A socket that never sends a frame is not a client: the writer closes
    // it at the first-frame deadline unless `last_heard` says it spoke.
    let mut spoke = 0;
    loop {
        tokio::select! {
            biased;
            () = kill.fired() => break,
            () = shutdown.cancelled() => {
                kill.close(close::GOING_AWAY, "server shutting down");
                break;
            }
            Some(done) = conn.tasks.join_next_with_id(), if !conn.tasks.is_empty() => {
                if let Ok((task, id)) = done {
                    conn.finished(task, id);
                }
            }
            msg = stream.next() => {
                if matches!(msg, Some(Ok(Message::Binary(_)))) {
                    spoke = writer::SPOKE;
                }
                last_heard.store(millis_since(started) | spoke, Ordering::Relaxed);
                app.metrics.messages_in.inc();
                match msg {
                    Some(Ok(Message::Binary(bytes))) => {
                        if bytes.len() > max {
                            kill.close(close::TOO_BIG, "message too big");
                            break;
                        }
                        // Boxed: its state would otherwise be part of every idle
                        // connection's task (about 1.6 KiB).
                        Box::pin(conn.on_message(bytes)).await;
                    }
                    Some(Ok(Message::Text(_))) => {
                        kill.close(close::UNSUPPORTED, "text messages are not part of websocket.io-rpc-v0.1");
                    }
                    // Control frames cost work too (a Ping is answered):
                    // they count toward the rate limit like any message.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        conn.admit();
                    }
                    Some(Ok(Message::Close(frame))) => {
                        debug!(code = frame.as_ref().map(|f| f.code), "peer closed");
                        kill.close(close::NORMAL, "");
                    }
                    Some(Err(e)) => {
                        kill.fire(read_error_ending(e));
                    }
                    None => kill.fire(Ending::Drop),
                }
            }
        }
    }
    Box::pin(conn.teardown()).await;
    if let Some(signed) = &conn.account {
        app.signed_in.remove(signed, id);
    }
    Box::pin(finish(stream, writer, kill.ending())).await;
    app.stats.connections.fetch_sub(1, Ordering::Relaxed);
    if let Some(Ending::Close {
        code: outbox::CLOSE_TOO_SLOW,
        ..
    }) = kill.ending()
    {
        app.metrics.slow_consumer_disconnects.inc();
    }
    info!(ending = ?kill.ending(), "disconnected");
}

/// Waits for the writer, which writes the close frame (bounded by its own
/// timeout); meanwhile, when the server is closing, keeps reading so the
/// peer's answering close arrives.
async fn finish(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    writer: tokio::task::JoinHandle<()>,
    ending: Option<Ending>,
) {
    if !matches!(ending, Some(Ending::Close { .. })) {
        let _ = writer.await;
        return;
    }
    let linger = async {
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    };
    let (_, ()) = tokio::join!(writer, linger);
}

fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Maps a read error to how the connection ends: an oversized message gets
/// 1009, a WebSocket protocol violation 1002, a broken transport nothing.
fn read_error_ending(e: axum::Error) -> Ending {
    use tungstenite::error::{CapacityError, Error as WsError};
    let inner = e.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(CapacityError::MessageTooLong { .. })) => Ending::Close {
            code: close::TOO_BIG,
            reason: "message too big",
            flush: false,
        },
        Some(WsError::Capacity(_) | WsError::Protocol(_)) => Ending::Close {
            code: close::PROTOCOL,
            reason: "websocket protocol error",
            flush: false,
        },
        Some(WsError::Utf8(_)) => Ending::Close {
            code: close::UNSUPPORTED,
            reason: "text messages are not part of websocket.io-rpc-v0.1",
            flush: false,
        },
        _ => Ending::Drop,
    }
}

/// The JSON payload of a chat event's Response.
fn envelope<T: Serialize>(result: Result<T, ErrorBody>) -> Bytes {
    Bytes::from(Envelope::from(result).to_bytes())
}

/// Idle time after which a peer counts as gone.
pub(crate) fn silence_limit(ping_every: Duration) -> Duration {
    ping_every * 2
}
