//! Replying from the app, and going to a message: "Reply" on a message
//! makes the composer of its room answer it (until sent or cancelled);
//! a reply's quote (and a search result) goes to the message it names,
//! loading older history until it is found, and the list shows it
//! highlighted with the cursor on it (see [`Chat::target`]).

use super::{Chat, OLDER_PAGE, now};
use leptos::{prelude::*, task::spawn_local};

/// Pages of older history loaded at most to find a message (so a reply
/// to a very old message costs a bounded number of requests).
const MAX_PAGES: usize = 20;

/// A message to show (scrolled to, highlighted, with the cursor on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its room.
    pub room: String,
    /// Its `seq`.
    pub seq: u64,
}

impl Target {
    /// Whether this is message `seq` of `room`.
    pub fn is(&self, room: &str, seq: u64) -> bool {
        self.room == room && self.seq == seq
    }
}

impl Chat {
    /// The composer of `room` answers message `seq` from now on, and
    /// takes the cursor.
    pub fn reply_to(&self, room: &str, seq: u64) {
        self.model.update(|m| m.start_reply(room, seq));
        self.focus_composer.update(|n| *n += 1);
    }

    /// The composer of `room` answers nothing any more.
    pub fn cancel_reply(&self, room: &str) {
        self.model.update(|m| m.cancel_reply(room));
    }

    /// Shows message `seq` of `room` (the room on screen), once loaded:
    /// older pages are loaded until it is there, the room's history
    /// starts, or [`MAX_PAGES`] pages came. Says so when it is not found.
    pub fn go_to(&self, room: &str, seq: u64) {
        let (chat, room) = (*self, room.to_owned());
        spawn_local(async move {
            let mut pages = 0;
            loop {
                let Some(state) = chat
                    .model
                    .try_with_untracked(|m| m.room(&room).map(|r| (r.has(seq), r.has_older)))
                else {
                    return;
                };
                match state {
                    Some((true, _)) => break,
                    Some((false, true)) if pages < MAX_PAGES => {
                        pages += 1;
                        if !chat.older_page(&room).await {
                            return;
                        }
                    }
                    _ => {
                        chat.note("That message is no longer in the room's history.");
                        return;
                    }
                }
            }
            chat.target.try_set(Some(Target { room, seq }));
        });
    }

    /// Loads one page of older messages of `room` into the model;
    /// `false` when it failed (and was said) or the app is gone.
    pub(super) async fn older_page(&self, room: &str) -> bool {
        let before = self.model.with_untracked(|m| {
            m.room(room)
                .and_then(|r| r.oldest_seq())
                .unwrap_or(u64::MAX)
        });
        match self.client().history(room, before, OLDER_PAGE).await {
            Ok(older) => self
                .model
                .try_update(|m| {
                    if let Some(r) = m.room_mut(room) {
                        r.prepend(&older);
                    }
                })
                .is_some(),
            Err(e) => {
                self.model
                    .try_update(|m| m.notice(format!("cannot load older messages: {e}"), now()));
                false
            }
        }
    }
}
