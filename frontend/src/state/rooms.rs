//! Accounts' rooms from the app: a new private room, a direct message,
//! and what owners and moderators do. A private room or direct message
//! this account is let into is joined at once (and said in a notice).

use super::Chat;
use leptos::{prelude::*, task::spawn_local};

impl Chat {
    /// Makes a private room with this title and shows it.
    pub fn create_private(&self, title: String, errors: RwSignal<Option<String>>) {
        let (chat, client) = (*self, self.client());
        errors.set(None);
        spawn_local(async move {
            match client.create_private(&title).await {
                Ok(state) => chat.show(&state.room),
                Err(e) => {
                    errors.try_set(Some(format!("cannot make that room: {e}")));
                }
            }
        });
    }

    /// Opens (and shows) the direct-message room with `user`.
    pub fn open_dm(&self, user: String) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            match client.dm(&user).await {
                Ok(state) => chat.show(&state.room),
                Err(e) => chat.note(format!("cannot message {user}: {e}")),
            }
        });
    }

    /// `invite`, `kick`, `ban`, `unban` or `moderator` of `user` in `room`; what
    /// happened is said in the room.
    pub fn moderate(&self, what: &'static str, room: String, user: String) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            let done = match what {
                shared::event::INVITE => format!("{user} may now enter"),
                shared::event::KICK => format!("{user} was removed"),
                shared::event::BAN => format!("{user} is banned"),
                shared::event::MODERATOR => format!("{user} is now a moderator"),
                _ => format!("{user} is no longer banned"),
            };
            match client.moderate(what, &room, &user).await {
                Ok(()) => chat.note(done),
                Err(e) => chat.note(format!("cannot {what} {user}: {e}")),
            }
        });
    }

    /// A private room this account was let into: joined, not shown.
    pub(super) fn let_in(&self, room: String) {
        let (chat, client) = (*self, self.client());
        spawn_local(async move {
            if let Err(e) = client.join(&room).await {
                chat.note(format!("cannot enter the room you were let into: {e}"));
            }
        });
    }
}
