//! The chat layer over [`Socket`]: sessions, rooms, recovery, and a queue
//! of `say`s that survives disconnects.
//!
//! On every (re)connect the client says `hello` with its session token and a
//! cursor per room it is in. The server replays exactly what was missed, or
//! says `recovered: false` and the view is replaced. Messages that arrive
//! while a room is (re)syncing are held back and applied after its state, so
//! nothing is shown twice or out of order. `say`s wait in a queue until the
//! server acknowledges them; a lost connection re-sends them (same `cid`, so
//! the server stores each once).

use super::socket::{CallError, Socket, Status};
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::{
    StreamExt,
    future::{Either, select},
};
use serde::{Serialize, de::DeserializeOwned};
use shared::{
    chat::{
        Cursor, ErrorBody, ErrorCode, Hello, HistoryQuery, Join, Msg, Nick, Presence, RoomInfo,
        RoomRef, RoomState, RoomStatus, Said, Say, TypingIn, TypingOut, Welcome, parse_envelope,
    },
    event,
};
use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap, HashSet},
    pin::pin,
    rc::{Rc, Weak},
};

/// How long a chat request may take.
const CALL_TIMEOUT_MS: u32 = 15_000;
/// A `say` the server could not store yet goes again after this long.
const UNAVAILABLE_RETRY_MS: u32 = 2_000;

/// What the app is told.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The connection changed.
    Status(Status),
    /// A `hello` succeeded (first connect or reconnect).
    Welcome(Welcome),
    /// A room was joined.
    Joined(RoomState),
    /// A room was left.
    Left(String),
    /// A new message, in `seq` order per room, never twice.
    Msg(Msg),
    /// Somebody joined, left or renamed.
    Presence(Presence),
    /// Somebody is (not) typing.
    Typing(TypingOut),
    /// A room became degraded (the server cannot store messages for now) or
    /// recovered.
    RoomStatus(RoomStatus),
    /// The server answered a `say`.
    Said {
        /// The message's client id.
        cid: String,
        /// Stored, or why not.
        result: Result<Said, ErrorBody>,
    },
    /// Something failed that the user should hear about.
    Error(String),
}

/// Errors of a chat call.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatError {
    /// No answer (see [`CallError`]).
    Call(CallError),
    /// The server refused.
    Server(ErrorBody),
    /// The answer was not understood.
    BadAnswer,
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::Call(e) => write!(f, "{e}"),
            ChatError::Server(e) => f.write_str(&e.message),
            ChatError::BadAnswer => f.write_str("the server's answer was not understood"),
        }
    }
}

#[derive(Debug, Clone)]
struct Queued {
    room: String,
    text: String,
    cid: String,
    in_flight: bool,
}

struct Inner {
    nick: Option<String>,
    session: Option<String>,
    /// Rooms this client is in, with the last message seen.
    cursors: BTreeMap<String, Cursor>,
    /// `hello` in flight on this connection: hold every message back.
    syncing: bool,
    /// `join`s in flight: hold their rooms' messages back.
    joining: HashSet<String>,
    held: Vec<Msg>,
    /// `say`s not acknowledged yet, in order.
    queue: Vec<Queued>,
    /// `hello` done on the current connection.
    ready: bool,
    /// Counts connections (each `Online`), so a late retry can tell it is stale.
    online_count: u64,
    pings: HashMap<String, oneshot::Sender<()>>,
    events: mpsc::UnboundedSender<ChatEvent>,
    cid_prefix: String,
    cid_counter: u64,
}

/// The chat client. Cheap to clone.
#[derive(Clone)]
pub struct ChatClient {
    socket: Socket,
    inner: Rc<RefCell<Inner>>,
}

fn json(value: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| {
            let digit = (js_sys::Math::random() * 16.0) as u32;
            char::from_digit(digit.min(15), 16).unwrap_or('0')
        })
        .collect()
}

impl ChatClient {
    /// Connects to `url`; `nick` and `session` come from an earlier visit.
    /// Returns the client and the stream of what happens.
    pub fn connect(
        url: &str,
        nick: Option<String>,
        session: Option<String>,
    ) -> (Self, mpsc::UnboundedReceiver<ChatEvent>) {
        Self::with_socket(Socket::connect(url), nick, session)
    }

    /// Like [`ChatClient::connect`], over a socket that connects only when
    /// told to ([`Socket::dormant`], then [`Socket::retry_now`]).
    pub fn dormant(
        url: &str,
        nick: Option<String>,
        session: Option<String>,
    ) -> (Self, mpsc::UnboundedReceiver<ChatEvent>) {
        Self::with_socket(Socket::dormant(url), nick, session)
    }

    fn with_socket(
        socket: Socket,
        nick: Option<String>,
        session: Option<String>,
    ) -> (Self, mpsc::UnboundedReceiver<ChatEvent>) {
        let (events, rx) = mpsc::unbounded();
        let client = Self {
            socket,
            inner: Rc::new(RefCell::new(Inner {
                nick,
                session,
                cursors: BTreeMap::new(),
                syncing: false,
                joining: HashSet::new(),
                held: Vec::new(),
                queue: Vec::new(),
                ready: false,
                online_count: 0,
                pings: HashMap::new(),
                events,
                cid_prefix: random_hex(12),
                cid_counter: 0,
            })),
        };
        client.spawn_pumps();
        (client, rx)
    }

    /// The nickname and session the next `hello` asks for (a tab taking
    /// over from another one adopts what that one last stored).
    pub fn adopt(&self, nick: Option<String>, session: Option<String>) {
        let mut inner = self.inner.borrow_mut();
        if session.is_some() {
            inner.session = session;
        }
        if nick.is_some() {
            inner.nick = nick;
        }
    }

    /// The socket underneath (status, retry, raw calls).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    fn emit(&self, event: ChatEvent) {
        let _ = self.inner.borrow().events.unbounded_send(event);
    }

    fn weak(&self) -> Weak<RefCell<Inner>> {
        Rc::downgrade(&self.inner)
    }

    fn rebuild(socket: &Socket, weak: &Weak<RefCell<Inner>>) -> Option<Self> {
        weak.upgrade().map(|inner| Self {
            socket: socket.clone(),
            inner,
        })
    }

    fn spawn_pumps(&self) {
        let (socket, weak) = (self.socket.clone(), self.weak());
        let mut statuses = self.socket.statuses();
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(status) = statuses.next().await {
                let Some(client) = Self::rebuild(&socket, &weak) else {
                    return;
                };
                client.on_status(status);
            }
        });
        self.forward(event::MSG, |client, msg: Msg| client.accept(msg));
        self.forward(event::PRESENCE, |client, p: Presence| {
            client.emit(ChatEvent::Presence(p));
        });
        self.forward(event::TYPING, |client, t: TypingOut| {
            client.emit(ChatEvent::Typing(t));
        });
        self.forward(event::ROOM_STATUS, |client, s: RoomStatus| {
            let ok = s.state == shared::chat::Health::Ok;
            client.emit(ChatEvent::RoomStatus(s));
            if ok {
                client.flush_queue();
            }
        });
        let weak = self.weak();
        let mut pongs = self.socket.on(event::PONG);
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(payload) = pongs.next().await {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let nonce = String::from_utf8_lossy(&payload).into_owned();
                let waiter = inner.borrow_mut().pings.remove(&nonce);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(());
                }
            }
        });
    }

    /// Decodes every `event` Notify as JSON and hands it to `apply`
    /// (malformed payloads are dropped).
    fn forward<T: DeserializeOwned + 'static>(&self, event: &'static str, apply: fn(&Self, T)) {
        let (socket, weak) = (self.socket.clone(), self.weak());
        let mut payloads = self.socket.on(event);
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(payload) = payloads.next().await {
                let Some(client) = Self::rebuild(&socket, &weak) else {
                    return;
                };
                if let Ok(value) = serde_json::from_slice::<T>(&payload) {
                    apply(&client, value);
                }
            }
        });
    }

    fn on_status(&self, status: Status) {
        let online = status == Status::Online;
        {
            let mut inner = self.inner.borrow_mut();
            inner.ready = false;
            if online {
                inner.online_count += 1;
            }
            if !online {
                for q in &mut inner.queue {
                    q.in_flight = false;
                }
            }
        }
        self.emit(ChatEvent::Status(status));
        if online {
            let client = self.clone();
            wasm_bindgen_futures::spawn_local(async move { client.hello().await });
        }
    }

    /// Sends a rich Request now; the future resolves to its envelope.
    fn request<T: DeserializeOwned + 'static>(
        &self,
        event: &'static str,
        body: &impl Serialize,
        timeout_ms: u32,
    ) -> impl std::future::Future<Output = Result<T, ChatError>> + 'static {
        let call = self.socket.call(event, json(body), timeout_ms);
        async move {
            let answer = call.await.map_err(ChatError::Call)?;
            match parse_envelope::<T>(&answer) {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(ChatError::Server(e)),
                Err(_) => Err(ChatError::BadAnswer),
            }
        }
    }

    /// Says `hello` with the session and cursors, then re-sends the queue.
    async fn hello(&self) {
        let body = {
            let mut inner = self.inner.borrow_mut();
            inner.syncing = true;
            Hello {
                v: 1,
                nick: inner.nick.clone(),
                session: inner.session.clone(),
                resume: Some(inner.cursors.values().cloned().collect()),
            }
        };
        let result = self
            .request::<Welcome>(event::HELLO, &body, CALL_TIMEOUT_MS)
            .await;
        let welcome = match result {
            Ok(welcome) => welcome,
            Err(ChatError::Server(e))
                if e.code == ErrorCode::TooLong || e.code == ErrorCode::BadRequest =>
            {
                // A stored nickname the server refuses: forget it and retry.
                let had_nick = self.inner.borrow_mut().nick.take().is_some();
                self.emit(ChatEvent::Error(e.message));
                if had_nick {
                    Box::pin(self.hello()).await;
                }
                return;
            }
            Err(ChatError::Call(_)) => return, // the next connection says hello again
            Err(ChatError::Server(e)) if e.code == ErrorCode::Unavailable => {
                // The server cannot reach what it shares with other
                // processes yet: say hello again shortly, on this connection
                // if it is still the current one (else its own hello runs).
                self.emit(ChatEvent::Error(e.message));
                let connection = self.inner.borrow().online_count;
                super::sleep_ms(UNAVAILABLE_RETRY_MS).await;
                let current = {
                    let inner = self.inner.borrow();
                    inner.online_count == connection && !inner.ready
                };
                if current {
                    Box::pin(self.hello()).await;
                }
                return;
            }
            Err(e) => {
                self.emit(ChatEvent::Error(e.to_string()));
                return;
            }
        };
        let held = {
            let mut inner = self.inner.borrow_mut();
            inner.session = Some(welcome.session.clone());
            inner.nick = Some(welcome.nick.clone());
            inner.cursors = welcome
                .rooms
                .iter()
                .map(|r| {
                    let cursor = Cursor {
                        room: r.room.clone(),
                        epoch: r.epoch.clone(),
                        seq: r.seq,
                    };
                    (r.room.clone(), cursor)
                })
                .collect();
            inner.syncing = false;
            inner.ready = true;
            std::mem::take(&mut inner.held)
        };
        self.emit(ChatEvent::Welcome(welcome));
        for msg in held {
            self.accept(msg);
        }
        self.flush_queue();
    }

    /// Applies one `msg`: held back while its room syncs, dropped when
    /// already seen, else passed on and the cursor moved.
    fn accept(&self, msg: Msg) {
        let fresh = {
            let mut inner = self.inner.borrow_mut();
            if inner.syncing || inner.joining.contains(&msg.room) {
                inner.held.push(msg);
                return;
            }
            match inner.cursors.get_mut(&msg.room) {
                None => false,
                Some(cursor) if cursor.epoch == msg.epoch && msg.seq <= cursor.seq => false,
                Some(cursor) => {
                    cursor.epoch.clone_from(&msg.epoch);
                    cursor.seq = msg.seq;
                    true
                }
            }
        };
        if fresh {
            self.emit(ChatEvent::Msg(msg));
        }
    }

    /// The nickname granted by the server (or wanted, before `hello`).
    pub fn nick(&self) -> Option<String> {
        self.inner.borrow().nick.clone()
    }

    /// The session token, once known.
    pub fn session(&self) -> Option<String> {
        self.inner.borrow().session.clone()
    }

    /// Rooms this client is in.
    pub fn rooms(&self) -> Vec<String> {
        self.inner.borrow().cursors.keys().cloned().collect()
    }

    /// Queues a message and sends it as soon as the connection allows.
    /// Returns its `cid`, which the `Msg` and `Said` events carry.
    pub fn say(&self, room: &str, text: &str) -> String {
        let cid = {
            let mut inner = self.inner.borrow_mut();
            inner.cid_counter += 1;
            let cid = format!("{}-{}", inner.cid_prefix, inner.cid_counter);
            inner.queue.push(Queued {
                room: room.to_owned(),
                text: text.to_owned(),
                cid: cid.clone(),
                in_flight: false,
            });
            cid
        };
        self.flush_queue();
        cid
    }

    /// Queues a failed message again, with its original `cid`.
    pub fn retry(&self, room: &str, text: &str, cid: &str) {
        {
            let mut inner = self.inner.borrow_mut();
            if inner.queue.iter().any(|q| q.cid == cid) {
                return;
            }
            inner.queue.push(Queued {
                room: room.to_owned(),
                text: text.to_owned(),
                cid: cid.to_owned(),
                in_flight: false,
            });
        }
        self.flush_queue();
    }

    /// How many messages wait for an acknowledgement.
    pub fn queued(&self) -> usize {
        self.inner.borrow().queue.len()
    }

    /// The messages waiting for an acknowledgement, in order: room, text
    /// and `cid` (the app keeps them across a reload and queues them again
    /// with [`ChatClient::retry`], so each is stored once).
    pub fn pending(&self) -> Vec<(String, String, String)> {
        self.inner
            .borrow()
            .queue
            .iter()
            .map(|q| (q.room.clone(), q.text.clone(), q.cid.clone()))
            .collect()
    }

    /// Sends every queued `say` not already on its way, in order.
    fn flush_queue(&self) {
        let to_send: Vec<Queued> = {
            let mut inner = self.inner.borrow_mut();
            if !inner.ready {
                return;
            }
            inner
                .queue
                .iter_mut()
                .filter(|q| !q.in_flight)
                .map(|q| {
                    q.in_flight = true;
                    q.clone()
                })
                .collect()
        };
        for q in to_send {
            let body = Say {
                room: q.room,
                text: q.text,
                cid: q.cid.clone(),
            };
            // The frame goes out now, in queue order; the answer comes later.
            let answer = self.request::<Said>(event::SAY, &body, CALL_TIMEOUT_MS);
            let client = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let result = answer.await;
                client.said(&q.cid, result);
            });
        }
    }

    fn said(&self, cid: &str, result: Result<Said, ChatError>) {
        let result = match result {
            Ok(said) => Ok(said),
            Err(ChatError::Server(e)) if e.code == ErrorCode::Unavailable => {
                // The server could not store it for now and said so: it
                // stays queued (same cid, so a retry is never stored twice)
                // and goes again shortly, or when the room is back.
                if let Some(q) = self
                    .inner
                    .borrow_mut()
                    .queue
                    .iter_mut()
                    .find(|q| q.cid == cid)
                {
                    q.in_flight = false;
                }
                let client = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    super::sleep_ms(UNAVAILABLE_RETRY_MS).await;
                    client.flush_queue();
                });
                return;
            }
            Err(ChatError::Server(e)) => Err(e),
            Err(ChatError::Call(CallError::Disconnected)) => {
                // Stays queued; re-sent after the next hello.
                let mut inner = self.inner.borrow_mut();
                if let Some(q) = inner.queue.iter_mut().find(|q| q.cid == cid) {
                    q.in_flight = false;
                }
                return;
            }
            Err(e) => Err(ErrorBody::new(ErrorCode::Unavailable, e.to_string())),
        };
        self.inner.borrow_mut().queue.retain(|q| q.cid != cid);
        self.emit(ChatEvent::Said {
            cid: cid.to_owned(),
            result,
        });
    }

    /// Joins a room (recovering from the last cursor if it was in it).
    pub async fn join(&self, room: &str) -> Result<RoomState, ChatError> {
        let since = {
            let mut inner = self.inner.borrow_mut();
            inner.joining.insert(room.to_owned());
            inner.cursors.get(room).cloned()
        };
        let body = Join {
            room: room.to_owned(),
            since,
        };
        let result = self
            .request::<RoomState>(event::JOIN, &body, CALL_TIMEOUT_MS)
            .await;
        let held = {
            let mut inner = self.inner.borrow_mut();
            inner.joining.remove(room);
            if let Ok(state) = &result {
                inner.joining.remove(&state.room);
                let cursor = Cursor {
                    room: state.room.clone(),
                    epoch: state.epoch.clone(),
                    seq: state.seq,
                };
                inner.cursors.insert(state.room.clone(), cursor);
            }
            if inner.syncing {
                Vec::new()
            } else {
                std::mem::take(&mut inner.held)
            }
        };
        if let Ok(state) = &result {
            self.emit(ChatEvent::Joined(state.clone()));
        }
        for msg in held {
            self.accept(msg);
        }
        result
    }

    /// Leaves a room.
    pub async fn leave(&self, room: &str) -> Result<(), ChatError> {
        let body = RoomRef {
            room: room.to_owned(),
        };
        self.request::<shared::chat::Empty>(event::LEAVE, &body, CALL_TIMEOUT_MS)
            .await?;
        self.inner.borrow_mut().cursors.remove(room);
        self.emit(ChatEvent::Left(room.to_owned()));
        Ok(())
    }

    /// Changes nickname.
    pub async fn set_nick(&self, nick: &str) -> Result<String, ChatError> {
        if !self.inner.borrow().ready {
            // Not connected yet: the next hello asks for it.
            self.inner.borrow_mut().nick = Some(nick.to_owned());
            return Ok(nick.to_owned());
        }
        let body = Nick {
            nick: nick.to_owned(),
        };
        let granted = self
            .request::<Nick>(event::NICK, &body, CALL_TIMEOUT_MS)
            .await?;
        self.inner.borrow_mut().nick = Some(granted.nick.clone());
        Ok(granted.nick)
    }

    /// Up to `limit` messages before `before`, oldest first.
    pub async fn history(
        &self,
        room: &str,
        before: u64,
        limit: u16,
    ) -> Result<Vec<Msg>, ChatError> {
        let body = HistoryQuery {
            room: room.to_owned(),
            before,
            limit,
        };
        self.request(event::HISTORY, &body, CALL_TIMEOUT_MS).await
    }

    /// Every room on the server.
    pub async fn list_rooms(&self) -> Result<Vec<RoomInfo>, ChatError> {
        self.request(event::ROOMS, &shared::chat::Empty {}, CALL_TIMEOUT_MS)
            .await
    }

    /// Tells the room this user is (not) typing.
    pub fn typing(&self, room: &str, on: bool) {
        if self.inner.borrow().ready {
            let body = TypingIn {
                room: room.to_owned(),
                on,
            };
            self.socket.notify(event::TYPING, json(&body));
        }
    }

    /// Round-trip time of a `ping`, in milliseconds.
    pub async fn ping(&self) -> Result<f64, CallError> {
        let nonce = random_hex(8);
        let (tx, rx) = oneshot::channel();
        self.inner.borrow_mut().pings.insert(nonce.clone(), tx);
        let start = super::now_ms();
        if !self.socket.notify(event::PING, nonce.clone().into_bytes()) {
            self.inner.borrow_mut().pings.remove(&nonce);
            return Err(CallError::Disconnected);
        }
        match select(rx, pin!(super::sleep_ms(CALL_TIMEOUT_MS))).await {
            Either::Left((Ok(()), _)) => Ok(super::now_ms() - start),
            _ => {
                self.inner.borrow_mut().pings.remove(&nonce);
                Err(CallError::TimedOut)
            }
        }
    }

    /// The address the server sees.
    pub async fn myip(&self) -> Result<String, CallError> {
        let answer = self
            .socket
            .call(event::MYIP, Bytes::new(), CALL_TIMEOUT_MS)
            .await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// The text upper-cased by the server.
    pub async fn upper(&self, text: &str) -> Result<String, CallError> {
        let answer = self
            .socket
            .call(
                event::UPPERCASE,
                text.to_owned().into_bytes(),
                CALL_TIMEOUT_MS,
            )
            .await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Runs `long_runing_task`; past `timeout_ms` the call is reset.
    pub async fn long_task(&self, timeout_ms: u32) -> Result<String, CallError> {
        let answer = self
            .socket
            .call(event::LONG_RUNNING_TASK, Bytes::new(), timeout_ms)
            .await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }
}
