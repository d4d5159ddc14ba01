//! The one place that turns the client's events into signals, and the
//! actions components call. Components read [`Chat`] from context; none
//! opens a socket.

pub mod command;
pub mod model;
pub mod tab;

use crate::net::chat::{ChatClient, ChatError};
use command::Command;
use futures_util::StreamExt;
use leptos::{prelude::*, task::spawn_local};
use model::Model;
use send_wrapper::SendWrapper;
use shared::chat::RoomInfo;

/// Longest message the server takes by default, in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Older messages asked for at a time (the server's most).
pub const OLDER_PAGE: u16 = 200;
/// localStorage key of the nickname.
pub const NICK_KEY: &str = "chat.nick";
/// localStorage key of the session token: one per browser (the tab that
/// holds it is the only one that chats, see [`tab`]).
pub const SESSION_KEY: &str = "chat.session";
/// localStorage key of the messages not acknowledged yet (JSON list of
/// `[room, text, cid]`), sent again after a reload with the same `cid`.
pub const OUTBOX_KEY: &str = "chat.outbox";
/// localStorage key of the last `seq` read per room (JSON object).
pub const READ_KEY: &str = "chat.read";
/// localStorage key prefix of each room's draft.
pub const DRAFT_KEY: &str = "chat.draft.";

/// Whether this tab is the one that chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Not decided yet (asking the browser).
    Asking,
    /// This tab chats.
    Mine,
    /// Another tab of this browser chats; this one waits.
    Elsewhere,
}

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
    /// Why the nickname asked for was refused (shown in the dialog).
    pub nick_error: RwSignal<Option<String>>,
    /// Why what was typed in the composer was not sent (shown under it).
    pub composer_error: RwSignal<Option<String>>,
    /// Why a room could not be joined from the sidebar (shown under it).
    pub join_error: RwSignal<Option<String>>,
    /// Bumped when a person's action should put the cursor in the
    /// composer (picking a room, joining one); nothing else moves focus.
    pub focus_composer: RwSignal<u64>,
    /// The rooms drawer (phone width) is open.
    pub rooms_open: RwSignal<bool>,
    /// Whether this tab chats (see [`tab`]).
    pub tab: RwSignal<Tab>,
    client: StoredValue<SendWrapper<ChatClient>>,
    /// The room "typing" was last announced in, so "stopped" goes there.
    typing_in: StoredValue<Option<String>>,
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

/// Removes a stored string.
pub fn forget(local: bool, key: &str) {
    if let Some(s) = storage(local) {
        let _ = s.remove_item(key);
    }
}

/// A room's draft, kept across reloads.
pub fn draft(room: &str) -> String {
    load(true, &format!("{DRAFT_KEY}{room}")).unwrap_or_default()
}

/// Keeps a room's draft (an empty one is forgotten).
pub fn set_draft(room: &str, text: &str) {
    let key = format!("{DRAFT_KEY}{room}");
    if text.is_empty() {
        forget(true, &key);
    } else {
        store(true, &key, text);
    }
}

/// How often who-is-typing is checked for people who stopped silently.
const TYPING_SWEEP_MS: u64 = 1_000;

impl Chat {
    /// Connects to `url` at once and starts turning events into signals
    /// (tests mount several apps in one page this way).
    pub fn start(url: &str) -> Self {
        let (client, events) =
            ChatClient::connect(url, load(true, NICK_KEY), load(true, SESSION_KEY));
        Self::build(client, events, Tab::Mine)
    }

    /// The app's way in: chats only if no other tab of this browser does
    /// (else it says so, and can take over), see [`tab`].
    pub fn start_in_tab(url: &str) -> Self {
        let (client, events) =
            ChatClient::dormant(url, load(true, NICK_KEY), load(true, SESSION_KEY));
        let chat = Self::build(client, events, Tab::Asking);
        chat.claim_tab(false);
        chat
    }

    /// Asks for this tab's right to chat (taking it from another tab when
    /// `take_over`), and connects once it has it.
    pub fn claim_tab(&self, take_over: bool) {
        let chat = *self;
        tab::claim(
            take_over,
            move |mine| {
                if mine {
                    // The session may have changed in the other tab.
                    chat.client()
                        .adopt(load(true, NICK_KEY), load(true, SESSION_KEY));
                    chat.tab.try_set(Tab::Mine);
                    chat.client().socket().retry_now();
                } else {
                    chat.tab.try_set(Tab::Elsewhere);
                }
            },
            move || {
                if chat.tab.try_set(Tab::Elsewhere).is_none() {
                    chat.client().socket().close();
                }
            },
        );
    }

    fn build(
        client: ChatClient,
        mut events: futures_channel::mpsc::UnboundedReceiver<crate::net::chat::ChatEvent>,
        tab: Tab,
    ) -> Self {
        let asking = load(true, NICK_KEY).is_none();
        let mut model = Model::default();
        if let Some(read) = load(true, READ_KEY).and_then(|j| serde_json::from_str(&j).ok()) {
            model.read = read;
        }
        // Messages a reload interrupted go again, with their cids.
        let outbox: Vec<(String, String, String)> = load(true, OUTBOX_KEY)
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        for (room, text, cid) in outbox {
            model.local_say(&room, &cid, &text, now());
            client.retry(&room, &text, &cid);
        }
        let chat = Chat {
            model: RwSignal::new(model),
            directory: RwSignal::new(Vec::new()),
            asking_nick: RwSignal::new(asking),
            nick_error: RwSignal::new(None),
            composer_error: RwSignal::new(None),
            join_error: RwSignal::new(None),
            focus_composer: RwSignal::new(0),
            rooms_open: RwSignal::new(false),
            tab: RwSignal::new(tab),
            client: StoredValue::new(SendWrapper::new(client)),
            typing_in: StoredValue::new(None),
        };
        let socket = chat.client().socket().clone();
        spawn_local(async move {
            while let Some(event) = events.next().await {
                let said = matches!(event, crate::net::chat::ChatEvent::Said { .. });
                if let crate::net::chat::ChatEvent::Welcome(w) = &event {
                    store(true, SESSION_KEY, &w.session);
                }
                // The app was unmounted (its signals disposed): hang up.
                let applied = chat.model.try_update(|m| {
                    m.apply(event, now());
                    std::mem::take(&mut m.marks_changed).then(|| m.read.clone())
                });
                match applied {
                    None => {
                        socket.close();
                        break;
                    }
                    Some(Some(read)) => {
                        store(
                            true,
                            READ_KEY,
                            &serde_json::to_string(&read).unwrap_or_default(),
                        );
                    }
                    Some(None) => {}
                }
                if said {
                    chat.keep_outbox();
                }
            }
        });
        // Someone who stopped typing without a word stops showing.
        if let Ok(handle) = set_interval_with_handle(
            move || {
                let typing = chat.model.try_with_untracked(Model::anyone_typing);
                if typing == Some(true) {
                    chat.model.update(|m| {
                        m.expire_typing(now());
                    });
                }
            },
            std::time::Duration::from_millis(TYPING_SWEEP_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
        chat
    }

    /// Keeps the messages not acknowledged yet where a reload finds them.
    fn keep_outbox(&self) {
        let pending = self.client().pending();
        if pending.is_empty() {
            forget(true, OUTBOX_KEY);
        } else {
            store(
                true,
                OUTBOX_KEY,
                &serde_json::to_string(&pending).unwrap_or_default(),
            );
        }
    }

    /// The client (for components that need a raw call).
    pub fn client(&self) -> ChatClient {
        self.client.with_value(|c| (**c).clone())
    }

    fn note(&self, text: impl Into<String>) {
        let text = text.into();
        self.model.update(|m| m.notice(text, now()));
    }

    /// Runs what the composer sent: a message or a slash command. `Err`
    /// says why it was not done (the composer shows it and keeps the text).
    pub fn submit(&self, input: &str) -> Result<(), String> {
        match command::parse(input) {
            Command::Say(text) => self.say(&text),
            Command::Nick(nick) => self.set_nick(nick),
            Command::Join(room) => {
                let room = shared::room_name::room_name(&room).map_err(|e| e.to_string())?;
                self.join(room, self.composer_error);
            }
            Command::Leave => {
                let room = self.model.with_untracked(|m| m.current.clone());
                if room == shared::event::LOBBY {
                    return Err("#lobby cannot be left: everyone is in it".into());
                }
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
            Command::Invalid(why) => return Err(why),
        }
        Ok(())
    }

    /// Sends a message to the room on screen (queued while offline).
    pub fn say(&self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let room = self.model.with_untracked(|m| m.current.clone());
        let cid = self.client().say(&room, text);
        self.model.update(|m| m.local_say(&room, &cid, text, now()));
        self.keep_outbox();
    }

    /// Sends a failed message again.
    pub fn retry(&self, room: String, cid: String, text: String) {
        self.model.update(|m| m.retrying(&cid));
        self.client().retry(&room, &text, &cid);
        self.keep_outbox();
    }

    /// Joins (or creates) a room and shows it; a refusal goes to `errors`.
    pub fn join(&self, room: String, errors: RwSignal<Option<String>>) {
        let (chat, client) = (*self, self.client());
        errors.set(None);
        spawn_local(async move {
            match client.join(&room).await {
                Ok(state) => chat.show(&state.room),
                Err(e) => {
                    errors.try_set(Some(format!("cannot join #{room}: {e}")));
                }
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

    /// Changes nickname and remembers it. A refusal is shown in the
    /// dialog when it is open, else under the composer.
    pub fn set_nick(&self, nick: String) {
        let (chat, client) = (*self, self.client());
        chat.nick_error.set(None);
        spawn_local(async move {
            let why = match client.set_nick(&nick).await {
                Ok(granted) => {
                    store(true, NICK_KEY, &granted);
                    chat.model.update(|m| m.nick = granted);
                    chat.asking_nick.set(false);
                    return;
                }
                Err(ChatError::Server(e)) => format!("cannot use that nickname: {}", e.message),
                Err(e) => format!("cannot change nickname: {e}"),
            };
            if chat.asking_nick.get_untracked() {
                chat.nick_error.set(Some(why));
            } else {
                chat.composer_error.set(Some(why));
            }
        });
    }

    /// Shows a room (a person picked it: the cursor goes to its composer,
    /// and the phone's rooms drawer closes).
    pub fn show(&self, room: &str) {
        self.typing(false);
        self.model.update(|m| m.show(room));
        self.rooms_open.try_set(false);
        self.focus_composer.try_update(|n| *n += 1);
    }

    /// Loads older messages of `room` (a page of [`OLDER_PAGE`]); `done`
    /// runs once they are in the model (or none came).
    pub fn load_older(&self, room: &str, done: impl FnOnce() + 'static) {
        let before = self.model.with_untracked(|m| {
            m.room(room)
                .and_then(|r| r.oldest_seq())
                .unwrap_or(u64::MAX)
        });
        let (chat, client, room) = (*self, self.client(), room.to_owned());
        spawn_local(async move {
            match client.history(&room, before, OLDER_PAGE).await {
                Ok(older) => {
                    chat.model.try_update(|m| {
                        if let Some(r) = m.room_mut(&room) {
                            r.prepend(&older);
                        }
                    });
                }
                Err(e) => chat.note(format!("cannot load older messages: {e}")),
            }
            done();
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

    /// Tells the room on screen that this user is typing (`on`), or the
    /// room it was told so that they stopped.
    pub fn typing(&self, on: bool) {
        let Some(before) = self.typing_in.try_get_value() else {
            return;
        };
        let client = self.client();
        if on {
            let room = self.model.with_untracked(|m| m.current.clone());
            if let Some(old) = before.filter(|old| *old != room) {
                client.typing(&old, false);
            }
            client.typing(&room, true);
            self.typing_in.set_value(Some(room));
        } else if let Some(old) = before {
            client.typing(&old, false);
            self.typing_in.set_value(None);
        }
    }

    /// Reconnects now instead of waiting.
    pub fn retry_now(&self) {
        self.client().socket().retry_now();
    }
}
