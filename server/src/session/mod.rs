//! One WebSocket connection: a reader loop (this task) that decodes frames
//! and dispatches them, and a writer task that drains the bounded outbox.
//!
//! Every Request gets exactly one Response unless the client resets it; work
//! that takes time runs as a task in `tasks`, and a Reset aborts that task.

mod rich;
mod seed;
mod writer;

use crate::outbox::{self, Bounds, Ending, Kill, Outbox};
use crate::{
    AppState,
    addr::AddrToken,
    limits::{RateLimiter, Verdict},
    room::{ConnId, Member, RoomHandle},
};
use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use shared::{
    Frame, Name,
    chat::{Envelope, ErrorBody, ErrorCode},
    event,
};
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
    let guest = format!("guest-{id}");
    // The futures awaited once, at the start and the end, are boxed: their
    // state would otherwise be part of every idle connection's task.
    let nick = match Box::pin(app.claim_free(&guest, id, None)).await {
        Some(nick) => nick,
        // Cluster mode with Redis away: a name no other process will pick.
        None => format!("guest-{:08x}", rand::random::<u32>()),
    };
    let mut conn = Conn {
        id,
        addr,
        ip,
        outbox,
        kill: kill.clone(),
        nick,
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

/// The JSON payload of a rich Response.
fn envelope<T: Serialize>(result: Result<T, ErrorBody>) -> Bytes {
    Bytes::from(Envelope::from(result).to_bytes())
}

impl Conn {
    /// The room named, opened if needed; a room that does not exist yet
    /// spends the client address's budget for new rooms.
    async fn open_room(&self, name: &str) -> Result<RoomHandle, ErrorBody> {
        if let Some(room) = self.app.rooms.get(name) {
            return Ok(room);
        }
        let exists = self.app.room_exists(name).await;
        let addresses = self.app.addresses();
        let ip = self.ip;
        self.app
            .rooms
            .get_or_create(name, || exists || addresses.create_room(ip))
    }

    /// Lets go of a room's handle; the room closes if nobody else uses it.
    fn drop_room(&self, name: &str, room: RoomHandle) {
        drop(room);
        self.app.rooms.retire(name);
    }

    fn member(&self) -> Member {
        Member {
            conn: self.id,
            nick: self.nick.clone(),
            outbox: self.outbox.clone(),
            rich: self.session.is_some(),
        }
    }

    fn notify(&self, name: Name, payload: impl Into<Bytes>) {
        self.outbox.push(Frame::notify(name, payload).encode());
    }

    fn respond(&self, id: u32, payload: Bytes) {
        self.outbox.push(Frame::response(id, payload).encode());
    }

    /// Whether another request may wait for its answer (a `say` for its
    /// commit, a `long_runing_task`): at most `--max-inflight` at once.
    fn may_wait(&self, id: u32) -> bool {
        if self.tasks.len() < self.app.config.max_inflight {
            return true;
        }
        self.app.metrics.rate_limited.inc();
        self.respond(
            id,
            envelope::<()>(Err(ErrorBody::new(
                ErrorCode::RateLimited,
                "too many requests waiting for an answer; wait for some first",
            ))),
        );
        false
    }

    /// Runs `work` as the answer to Request `id`; a Reset aborts it.
    fn spawn_answer(&mut self, id: u32, work: impl Future<Output = Bytes> + Send + 'static) {
        let outbox = self.outbox.clone();
        let handle = self.tasks.spawn(async move {
            let payload = work.await;
            outbox.push(Frame::response(id, payload).encode());
            id
        });
        if let Some((_, older)) = self.inflight.insert(id, (handle.id(), handle)) {
            // The client reused an id still in flight: both calls still get
            // their answer; only the newer one can be reset.
            drop(older);
        }
    }

    fn finished(&mut self, task: tokio::task::Id, id: u32) {
        if self.inflight.get(&id).is_some_and(|(t, _)| *t == task) {
            self.inflight.remove(&id);
        }
    }

    fn reset(&mut self, id: u32) {
        if let Some((_, handle)) = self.inflight.remove(&id) {
            debug!(request_id = id, "reset: aborting");
            handle.abort();
        }
    }

    async fn on_message(&mut self, bytes: Bytes) {
        let frame = match Frame::decode(&bytes) {
            Ok(frame) => frame,
            Err(e) => {
                debug!(error = %e, "undecodable frame");
                self.kill.close(close::PROTOCOL, "malformed frame");
                return;
            }
        };
        match frame {
            Frame::Notify { name, payload } => {
                if self.admit() {
                    self.on_notify(&name, payload).await;
                }
            }
            Frame::Request { id, name, payload } => {
                if self.admit() {
                    self.on_request(id, &name, payload).await;
                } else if !self.kill.is_fired() {
                    self.respond(
                        id,
                        envelope::<()>(Err(ErrorBody::new(
                            ErrorCode::RateLimited,
                            "too many messages; slow down",
                        ))),
                    );
                }
            }
            Frame::Reset { id } => {
                if self.admit() {
                    self.reset(id);
                }
            }
            Frame::Response { .. } => {
                self.kill
                    .close(close::PROTOCOL, "clients do not send responses");
            }
        }
    }

    /// Applies the rate limit; closes the connection on sustained abuse.
    fn admit(&mut self) -> bool {
        match self.limiter.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::Refuse => {
                self.app.metrics.rate_limited.inc();
                false
            }
            Verdict::Abuse => {
                self.app.metrics.rate_limited.inc();
                self.kill.close(close::POLICY, "too many messages");
                false
            }
        }
    }

    async fn on_notify(&mut self, name: &str, payload: Bytes) {
        match name {
            event::PING => self.notify(event::name::PONG, payload),
            event::BROADCAST => self.broadcast(payload).await,
            event::TYPING => self.typing(payload).await,
            other => debug!(event = other, "ignoring unknown notify"),
        }
    }

    async fn on_request(&mut self, id: u32, name: &str, payload: Bytes) {
        let answer = match name {
            event::MYIP => Bytes::from(self.addr.to_string()),
            event::UPPERCASE => seed::uppercase(&payload),
            event::LONG_RUNNING_TASK => {
                if self.may_wait(id) {
                    let work = seed::long_running_task(self.app.clone());
                    self.spawn_answer(id, work);
                }
                return;
            }
            event::SAY => {
                if !self.may_wait(id) {
                    return;
                }
                match self.say(payload).await {
                    Ok(ack) => self.spawn_answer(id, ack),
                    Err(e) => self.respond(id, envelope::<()>(Err(e))),
                }
                return;
            }
            event::HELLO => envelope(self.hello(payload).await),
            event::JOIN => envelope(self.join(payload).await),
            event::LEAVE => envelope(self.leave(payload).await),
            event::HISTORY => envelope(self.history(payload).await),
            event::ROOMS => envelope(Ok(self
                .app
                .list_rooms(crate::limits::MAX_ROOMS_LISTED)
                .await)),
            event::NICK => envelope(self.rename(payload).await),
            other => envelope::<()>(Err(ErrorBody::new(
                ErrorCode::UnknownEvent,
                format!("no such request: '{other}'"),
            ))),
        };
        self.respond(id, answer);
    }

    /// Every connection is in `lobby` from the start.
    async fn enter_lobby(&mut self) {
        match self.app.rooms.get_or_create(event::LOBBY, || true) {
            Ok(lobby) => {
                if lobby.enter(self.member()).await.is_ok() {
                    self.rooms.insert(event::LOBBY.to_owned(), lobby);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot enter the lobby"),
        }
    }

    /// Leaves every room (closing those nobody else is in), saves the
    /// session, and gives the nickname back, unless a session keeps it.
    async fn teardown(&mut self) {
        self.tasks.abort_all();
        // Shutting down, everyone here is being closed: nobody is told of
        // the others leaving (their lists stay as they were, and they come
        // back as they were when the server does).
        let quiet = self.app.shutdown.is_cancelled();
        for room in self.rooms.values() {
            room.forget(self.id, quiet).await;
        }
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        if let Some(token) = &self.session {
            self.app
                .book
                .close_session(token, self.id, &self.nick, rooms.clone());
            let saved = crate::history::SavedSession {
                nick: self.nick.clone(),
                rooms: rooms.clone(),
            };
            // Saved as it ends, so its TTL counts from now after a restart.
            self.app.sessions.save(token, &saved);
            self.app.nicks.detach(&self.nick, self.id, token);
        } else {
            self.app.nicks.release(&self.nick, self.id);
        }
        for (name, room) in std::mem::take(&mut self.rooms) {
            self.drop_room(&name, room);
        }
    }

    /// Records the session's nickname and rooms (in the store too, so a
    /// client can resume after a restart).
    fn remember(&self) {
        if let Some(token) = &self.session {
            let rooms: Vec<String> = self.rooms.keys().cloned().collect();
            self.app
                .book
                .update_session(token, self.id, &self.nick, rooms.clone());
            let saved = crate::history::SavedSession {
                nick: self.nick.clone(),
                rooms,
            };
            self.app.sessions.save(token, &saved);
        }
    }
}

/// Idle time after which a peer counts as gone.
pub(crate) fn silence_limit(ping_every: Duration) -> Duration {
    ping_every * 2
}
