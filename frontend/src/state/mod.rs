//! The one place that turns the client's events into signals, and the
//! actions components call. Components read [`Chat`] from context; none
//! opens a socket.
//!
//! One job per file: `account` (who is signed in: sign in and out),
//! `actions` (what components call), `editing` (editing and deleting
//! messages), `replies` (replying, and going to a message), `search`
//! (the search panel and its results), `page` (clock,
//! socket address, storage), `model` (what the UI shows, no signals),
//! `command` (slash commands), `rooms` (private rooms, direct messages,
//! moderation), `tab` (one chatting tab per browser); this
//! file holds [`Chat`] and turns the client's events into it.

mod account;
mod actions;
pub mod command;
mod editing;
pub mod model;
mod page;
mod replies;
mod rooms;
mod search;
pub mod tab;

pub use account::Account;
pub use editing::{Act, Acting};
pub use page::{draft, forget, load, now, set_draft, socket_url, store};
pub use replies::Target;
pub use search::Search;

use crate::net::chat::ChatClient;
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
/// `[room, text, cid, reply]`, `reply` the `seq` answered or `null`; lists
/// stored before replies, `[room, text, cid]`, read the same), sent again
/// after a reload with the same `cid`.
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
    /// Who is signed in.
    pub account: RwSignal<Account>,
    /// Whether the sign-in dialog is open.
    pub asking_account: RwSignal<bool>,
    /// Why signing in or up failed (shown in the dialog).
    pub account_error: RwSignal<Option<String>>,
    /// What the sign-in dialog says first ("You were signed out…").
    pub account_notice: RwSignal<Option<String>>,
    /// A sign-in is on its way.
    pub account_busy: RwSignal<bool>,
    /// The message being edited, or whose deletion is asked about.
    pub acting: RwSignal<Option<Acting>>,
    /// A message to show once its room's list can (set by
    /// [`Chat::go_to`]; the list takes it).
    pub target: RwSignal<Option<Target>>,
    /// The message shown highlighted for a moment (the last target).
    pub highlight: RwSignal<Option<Target>>,
    /// The search panel.
    pub search: RwSignal<Search>,
    client: StoredValue<SendWrapper<ChatClient>>,
    /// The room "typing" was last announced in, so "stopped" goes there.
    typing_in: StoredValue<Option<String>>,
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
                    // The other tab may have signed in or out.
                    chat.check_account();
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
        let outbox: Vec<shared::chat::Say> = load(true, OUTBOX_KEY)
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        for say in outbox {
            model.local_say(&say.room, &say.cid, &say.text, say.reply, now());
            client.retry(say);
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
            account: RwSignal::new(Account::Checking),
            asking_account: RwSignal::new(false),
            account_error: RwSignal::new(None),
            account_notice: RwSignal::new(None),
            account_busy: RwSignal::new(false),
            acting: RwSignal::new(None),
            target: RwSignal::new(None),
            highlight: RwSignal::new(None),
            search: RwSignal::new(Search::default()),
            client: StoredValue::new(SendWrapper::new(client)),
            typing_in: StoredValue::new(None),
        };
        chat.check_account();
        // A socket closed because its sign-in ended, or because the
        // server takes no guests, changes what the page asks.
        let status = Memo::new(move |_| chat.model.with(|m| m.status.clone()));
        Effect::new(move |_| chat.on_status(&status.get()));
        let socket = chat.client().socket().clone();
        spawn_local(async move {
            while let Some(event) = events.next().await {
                let said = matches!(event, crate::net::chat::ChatEvent::Said { .. });
                if let crate::net::chat::ChatEvent::Invited(i) = &event {
                    chat.let_in(i.room.clone());
                }
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
            // `[room, text, cid, reply]` each (see [`OUTBOX_KEY`]).
            let rows: Vec<_> = pending
                .into_iter()
                .map(|s| (s.room, s.text, s.cid, s.reply))
                .collect();
            store(
                true,
                OUTBOX_KEY,
                &serde_json::to_string(&rows).unwrap_or_default(),
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
}
