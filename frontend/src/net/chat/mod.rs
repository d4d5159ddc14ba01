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
//!
//! One job per file: `sync` decides (cursors, held messages, the queue,
//! what a failed `hello` or `say` leads to) and has no browser in it;
//! `events` holds what the app is told; this file, `outbox` (sending the
//! queue), `calls` (one-off requests), `changes` (editing and deleting
//! messages) and `rooms` (private rooms, direct messages, moderation) do
//! the I/O.

mod calls;
mod changes;
mod events;
mod outbox;
mod rooms;
mod sync;

pub use events::{ChatError, ChatEvent};

use super::socket::{Socket, Status};
use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use serde::{Serialize, de::DeserializeOwned};
use shared::{
    chat::{
        Join, Msg, Nick, Presence, RoomRef, RoomState, RoomStatus, TypingOut, Welcome,
        parse_envelope,
    },
    event,
};
use std::{
    cell::RefCell,
    collections::HashMap,
    rc::{Rc, Weak},
};
use sync::{Again, SyncState};

/// How long a chat request may take.
const CALL_TIMEOUT_MS: u32 = 15_000;
/// A `say` (or `hello`) the server could not serve yet goes again after
/// this long.
const UNAVAILABLE_RETRY_MS: u32 = 2_000;

struct Inner {
    /// What the client knows and decides (no I/O).
    sync: SyncState,
    pings: HashMap<String, oneshot::Sender<()>>,
    events: mpsc::UnboundedSender<ChatEvent>,
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
                sync: SyncState::new(nick, session, random_hex(12)),
                pings: HashMap::new(),
                events,
            })),
        };
        client.spawn_pumps();
        (client, rx)
    }

    /// The nickname and session the next `hello` asks for (a tab taking
    /// over from another one adopts what that one last stored).
    pub fn adopt(&self, nick: Option<String>, session: Option<String>) {
        self.inner.borrow_mut().sync.adopt(nick, session);
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
        self.forward(event::INVITED, |client, i: shared::rooms::Invited| {
            client.emit(ChatEvent::Invited(i));
        });
        self.forward(event::REMOVED, |client, r: shared::rooms::Removed| {
            client.inner.borrow_mut().sync.left(&r.room);
            client.emit(ChatEvent::Removed(r));
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
        self.inner.borrow_mut().sync.connection_changed(online);
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
        let body = self.inner.borrow_mut().sync.hello();
        let result = self
            .request::<Welcome>(event::HELLO, &body, CALL_TIMEOUT_MS)
            .await;
        let welcome = match result {
            Ok(welcome) => welcome,
            Err(e) => {
                let failed = self.inner.borrow_mut().sync.hello_failed(&e);
                if let Some(message) = failed.tell {
                    self.emit(ChatEvent::Error(message));
                }
                match failed.again {
                    Again::Never => {}
                    Again::Now => Box::pin(self.hello()).await,
                    Again::Later { connection } => {
                        super::sleep_ms(UNAVAILABLE_RETRY_MS).await;
                        let current = self.inner.borrow().sync.still_waiting(connection);
                        if current {
                            Box::pin(self.hello()).await;
                        }
                    }
                }
                return;
            }
        };
        let unasked = self.inner.borrow_mut().sync.unasked_nick(&welcome.nick);
        let fresh = self.inner.borrow_mut().sync.welcomed(&welcome);
        self.emit(ChatEvent::Welcome(welcome));
        for msg in fresh {
            self.emit(ChatEvent::Msg(msg));
        }
        self.flush_queue();
        // A nickname chosen while this hello was on its way (sent without
        // it): asked for now, or the welcome's would stand.
        if let Some(wanted) = unasked {
            match self.set_nick(&wanted).await {
                Ok(granted) => self.emit(ChatEvent::Nick(granted)),
                Err(e) => self.emit(ChatEvent::Error(format!("cannot use that nickname: {e}"))),
            }
        }
    }

    /// Applies one `msg`: held back while its room syncs, dropped when
    /// already seen, else passed on and the cursor moved.
    fn accept(&self, msg: Msg) {
        let fresh = self.inner.borrow_mut().sync.accept(msg);
        if let Some(msg) = fresh {
            self.emit(ChatEvent::Msg(msg));
        }
    }

    /// The nickname granted by the server (or wanted, before `hello`).
    pub fn nick(&self) -> Option<String> {
        self.inner.borrow().sync.nick()
    }

    /// The session token, once known.
    pub fn session(&self) -> Option<String> {
        self.inner.borrow().sync.session()
    }

    /// Rooms this client is in.
    pub fn rooms(&self) -> Vec<String> {
        self.inner.borrow().sync.rooms()
    }

    /// Joins a room (recovering from the last cursor if it was in it).
    pub async fn join(&self, room: &str) -> Result<RoomState, ChatError> {
        let since = self.inner.borrow_mut().sync.join_started(room);
        let body = Join {
            room: room.to_owned(),
            since,
        };
        let result = self
            .request::<RoomState>(event::JOIN, &body, CALL_TIMEOUT_MS)
            .await;
        let fresh = self
            .inner
            .borrow_mut()
            .sync
            .join_ended(room, result.as_ref().ok());
        if let Ok(state) = &result {
            self.emit(ChatEvent::Joined(state.clone()));
        }
        for msg in fresh {
            self.emit(ChatEvent::Msg(msg));
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
        self.inner.borrow_mut().sync.left(room);
        self.emit(ChatEvent::Left(room.to_owned()));
        Ok(())
    }

    /// Changes nickname.
    pub async fn set_nick(&self, nick: &str) -> Result<String, ChatError> {
        if !self.inner.borrow().sync.ready() {
            // Not connected yet: the next hello asks for it.
            self.inner.borrow_mut().sync.set_nick(nick.to_owned());
            return Ok(nick.to_owned());
        }
        let body = Nick {
            nick: nick.to_owned(),
        };
        let granted = self
            .request::<Nick>(event::NICK, &body, CALL_TIMEOUT_MS)
            .await?;
        self.inner.borrow_mut().sync.set_nick(granted.nick.clone());
        Ok(granted.nick)
    }
}
