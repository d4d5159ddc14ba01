//! The one place that turns the client's events into signals, and the
//! actions components call. Components read [`Chat`] from context; none
//! opens a socket.

pub mod command;
pub mod model;

use crate::net::chat::{ChatClient, ChatError};
use command::Command;
use futures_util::StreamExt;
use leptos::{prelude::*, task::spawn_local};
use model::Model;
use send_wrapper::SendWrapper;
use shared::chat::RoomInfo;

/// Longest message the server takes by default, in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// localStorage key of the nickname.
pub const NICK_KEY: &str = "chat.nick";
/// sessionStorage key of the session token (one per tab).
pub const SESSION_KEY: &str = "chat.session";

/// Reactive chat state plus the client it drives. `Copy`, so components
/// capture it freely.
#[derive(Clone, Copy)]
pub struct Chat {
    /// What the UI shows.
    pub model: RwSignal<Model>,
    /// Every room on the server (for "browse rooms").
    pub directory: RwSignal<Vec<RoomInfo>>,
    /// Whether the nickname dialog is open.
    pub asking_nick: RwSignal<bool>,
    client: StoredValue<SendWrapper<ChatClient>>,
}

/// Unix milliseconds now.
pub fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// The socket address: `?socket=` if given; under `trunk serve` (port
/// 8080) the server on port 3000 of the same host; else this page's own.
pub fn socket_url() -> String {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return "ws://127.0.0.1:3000/socket".into();
    };
    let search = location.search().unwrap_or_default();
    if let Some(url) = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("socket="))
    {
        return js_sys::decode_uri_component(url)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_else(|| url.to_owned());
    }
    let scheme = if location.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    let host = location.host().unwrap_or_default();
    if location.port().unwrap_or_default() == "8080" {
        let hostname = location.hostname().unwrap_or_default();
        return format!("{scheme}://{hostname}:3000/socket");
    }
    format!("{scheme}://{host}/socket")
}

fn storage(local: bool) -> Option<web_sys::Storage> {
    let window = web_sys::window()?;
    if local {
        window.local_storage().ok().flatten()
    } else {
        window.session_storage().ok().flatten()
    }
}

/// Reads a stored string.
pub fn load(local: bool, key: &str) -> Option<String> {
    storage(local)?
        .get_item(key)
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
}

/// Stores a string (best effort: private modes may refuse).
pub fn store(local: bool, key: &str, value: &str) {
    if let Some(s) = storage(local) {
        let _ = s.set_item(key, value);
    }
}

impl Chat {
    /// Connects to `url` and starts turning events into signals.
    pub fn start(url: &str) -> Self {
        let nick = load(true, NICK_KEY);
        let session = load(false, SESSION_KEY);
        let asking = nick.is_none();
        let (client, mut events) = ChatClient::connect(url, nick, session);
        let chat = Chat {
            model: RwSignal::new(Model::default()),
            directory: RwSignal::new(Vec::new()),
            asking_nick: RwSignal::new(asking),
            client: StoredValue::new(SendWrapper::new(client)),
        };
        let socket = chat.client().socket().clone();
        spawn_local(async move {
            while let Some(event) = events.next().await {
                if let crate::net::chat::ChatEvent::Welcome(w) = &event {
                    store(false, SESSION_KEY, &w.session);
                }
                // The app was unmounted (its signals disposed): hang up.
                if chat.model.try_update(|m| m.apply(event, now())).is_none() {
                    socket.close();
                    break;
                }
            }
        });
        chat
    }

    /// The client (for components that need a raw call).
    pub fn client(&self) -> ChatClient {
        self.client.with_value(|c| (**c).clone())
    }

    fn note(&self, text: impl Into<String>) {
        let text = text.into();
        self.model.update(|m| m.notice(text, now()));
    }

    /// Runs what the composer sent: a message or a slash command.
    pub fn submit(&self, input: &str) {
        match command::parse(input) {
            Command::Say(text) => self.say(&text),
            Command::Nick(nick) => self.set_nick(nick),
            Command::Join(room) => self.join(room),
            Command::Leave => {
                let room = self.model.with_untracked(|m| m.current.clone());
                self.leave(room);
            }
            Command::Ping => {
                let (chat, client) = (*self, self.client());
                spawn_local(async move {
                    match client.ping().await {
                        Ok(ms) => chat.note(format!("pong: round trip {ms:.1} ms")),
                        Err(e) => chat.note(format!("ping failed: {e}")),
                    }
                });
            }
            Command::MyIp => {
                let (chat, client) = (*self, self.client());
                spawn_local(async move {
                    match client.myip().await {
                        Ok(ip) => chat.note(format!("the server sees you as {ip}")),
                        Err(e) => chat.note(format!("myip failed: {e}")),
                    }
                });
            }
            Command::Upper(text) => {
                let (chat, client) = (*self, self.client());
                spawn_local(async move {
                    match client.upper(&text).await {
                        Ok(up) => chat.note(up),
                        Err(e) => chat.note(format!("upper failed: {e}")),
                    }
                });
            }
            Command::Long(timeout) => {
                let (chat, client) = (*self, self.client());
                let timeout = timeout.unwrap_or(10_000);
                chat.note(format!("long task started (timeout {timeout} ms)…"));
                spawn_local(async move {
                    let started = crate::net::now_ms();
                    let result = client.long_task(timeout).await;
                    let took = crate::net::now_ms() - started;
                    match result {
                        Ok(answer) => chat.note(format!("long task: {answer} after {took:.0} ms")),
                        Err(crate::net::socket::CallError::TimedOut) => chat.note(format!(
                            "long task cancelled with a Reset after {timeout} ms"
                        )),
                        Err(e) => chat.note(format!("long task failed: {e}")),
                    }
                });
            }
            Command::Help => self.note(command::HELP),
            Command::Invalid(why) => self.note(why),
        }
    }

    /// Sends a message to the room on screen (queued while offline).
    pub fn say(&self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let room = self.model.with_untracked(|m| m.current.clone());
        let cid = self.client().say(&room, text);
        self.model.update(|m| m.local_say(&room, &cid, text, now()));
    }

    /// Sends a failed message again.
    pub fn retry(&self, room: String, cid: String, text: String) {
        self.model.update(|m| m.retrying(&cid));
        self.client().retry(&room, &text, &cid);
    }

    /// Joins (or creates) a room and shows it.
    pub fn join(&self, room: String) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            match client.join(&room).await {
                Ok(state) => chat.model.update(|m| m.show(&state.room)),
                Err(e) => chat.note(format!("cannot join {room}: {e}")),
            }
        });
    }

    /// Leaves a room.
    pub fn leave(&self, room: String) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            if let Err(e) = client.leave(&room).await {
                chat.note(format!("cannot leave {room}: {e}"));
            }
        });
    }

    /// Changes nickname and remembers it.
    pub fn set_nick(&self, nick: String) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            match client.set_nick(&nick).await {
                Ok(granted) => {
                    store(true, NICK_KEY, &granted);
                    chat.model.update(|m| m.nick = granted);
                    chat.asking_nick.set(false);
                }
                Err(ChatError::Server(e)) => {
                    chat.note(format!("cannot use that nickname: {}", e.message))
                }
                Err(e) => chat.note(format!("cannot change nickname: {e}")),
            }
        });
    }

    /// Shows a room.
    pub fn show(&self, room: &str) {
        self.model.update(|m| m.show(room));
    }

    /// Loads older messages of the room on screen.
    pub fn load_older(&self) {
        let (room, before) = self.model.with_untracked(|m| {
            let room = m.current.clone();
            let before = m
                .current_room()
                .and_then(|r| r.oldest_seq())
                .unwrap_or(u64::MAX);
            (room, before)
        });
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            match client.history(&room, before, 50).await {
                Ok(older) => chat.model.update(|m| {
                    if let Some(r) = m.room_mut(&room) {
                        r.prepend(&older);
                    }
                }),
                Err(e) => chat.note(format!("cannot load older messages: {e}")),
            }
        });
    }

    /// Refreshes the list of all rooms.
    pub fn refresh_directory(&self) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            if let Ok(rooms) = client.list_rooms().await {
                chat.directory.set(rooms);
            }
        });
    }

    /// Tells the room on screen whether this user is typing.
    pub fn typing(&self, on: bool) {
        let room = self.model.with_untracked(|m| m.current.clone());
        self.client().typing(&room, on);
    }

    /// Reconnects now instead of waiting.
    pub fn retry_now(&self) {
        self.client().socket().retry_now();
    }
}
