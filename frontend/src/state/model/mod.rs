//! The chat as the UI shows it: plain data with plain methods, turned from
//! [`ChatEvent`]s. No signals here, so it is tested without a browser.
//!
//! One job per file: `room` (one room's lines, members and typists),
//! `change` (edits and deletions: applying them, and who may make them),
//! `reply` (what each room's composer answers, and quotes of answered
//! messages), `search` (search results: where, and what matched),
//! `apply` (what each event does); this file holds the whole: rooms, the
//! one on screen, what was read, and this user's own actions.
//!
//! [`ChatEvent`]: crate::net::chat::ChatEvent

mod apply;
mod change;
mod reply;
mod room;
mod search;
#[cfg(test)]
mod tests;

pub use change::EDIT_WINDOW_MS;
pub use reply::{EXCERPT_CHARS, Quote, excerpt};
pub use room::{Delivery, Line, RoomView, TYPING_TTL_MS, Typist, label};
pub use search::{Hit, marks, query_words};

use crate::net::socket::Status;

/// Everything the UI shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Connection status.
    pub status: Status,
    /// This user's nickname.
    pub nick: String,
    /// Joined rooms, in the order they were joined.
    pub rooms: Vec<RoomView>,
    /// The room on screen.
    pub current: String,
    /// The last `seq` this user saw in each room (kept across visits by
    /// the app, see [`Model::marks_changed`]).
    pub read: std::collections::BTreeMap<String, u64>,
    /// `read` changed since the app last stored it.
    pub marks_changed: bool,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            status: Status::Connecting,
            nick: String::new(),
            rooms: Vec::new(),
            current: shared::event::LOBBY.to_owned(),
            read: std::collections::BTreeMap::new(),
            marks_changed: false,
        }
    }
}

impl Model {
    /// The room on screen, if joined.
    pub fn current_room(&self) -> Option<&RoomView> {
        self.room(&self.current)
    }

    /// A joined room.
    pub fn room(&self, name: &str) -> Option<&RoomView> {
        self.rooms.iter().find(|r| r.name == name)
    }

    /// A joined room, to change.
    pub fn room_mut(&mut self, name: &str) -> Option<&mut RoomView> {
        self.rooms.iter_mut().find(|r| r.name == name)
    }

    fn room_or_new(&mut self, name: &str) -> &mut RoomView {
        let index = match self.rooms.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rooms.push(RoomView::new(name));
                self.rooms.len() - 1
            }
        };
        &mut self.rooms[index]
    }

    /// Shows a room and clears its unread count. Messages that came while
    /// this user was away get a "new" line above them.
    pub fn show(&mut self, name: &str) {
        let previous = std::mem::replace(&mut self.current, name.to_owned());
        if previous != name {
            self.mark_read(&previous);
            if let Some(room) = self.room_mut(&previous) {
                room.new_from = None;
            }
        }
        self.arrive(name);
    }

    /// The "new" line for the room on screen, and everything in it read.
    fn arrive(&mut self, name: &str) {
        let mark = self.read.get(name).copied();
        if let Some(room) = self.room_mut(name) {
            room.unread = 0;
            room.new_from = mark.and_then(|mark| {
                room.lines
                    .iter()
                    .filter(|l| !l.own && !l.system)
                    .find_map(|l| l.seq.filter(|s| *s > mark))
            });
        }
        self.mark_read(name);
    }

    /// Everything shown in `name` counts as seen.
    fn mark_read(&mut self, name: &str) {
        let Some(newest) = self.room(name).and_then(RoomView::newest_seq) else {
            return;
        };
        if self.read.get(name) != Some(&newest) {
            self.read.insert(name.to_owned(), newest);
            self.marks_changed = true;
        }
    }

    /// Forgets who stopped typing without saying so (see [`TYPING_TTL_MS`]).
    /// Whether anything changed.
    pub fn expire_typing(&mut self, now: i64) -> bool {
        let mut changed = false;
        for room in &mut self.rooms {
            let before = room.typing.len();
            room.typing.retain(|t| now - t.at < TYPING_TTL_MS);
            changed |= room.typing.len() != before;
        }
        changed
    }

    /// Whether anybody is typing anywhere.
    pub fn anyone_typing(&self) -> bool {
        self.rooms.iter().any(|r| !r.typing.is_empty())
    }

    /// Unread messages in the rooms not on screen.
    pub fn unread_elsewhere(&self) -> u32 {
        self.rooms
            .iter()
            .filter(|r| r.name != self.current)
            .map(|r| r.unread)
            .sum()
    }

    /// Adds this user's message (answering message `reply`, if given) as
    /// "sending".
    pub fn local_say(&mut self, room: &str, cid: &str, text: &str, reply: Option<u64>, ts: i64) {
        let nick = self.nick.clone();
        let view = self.room_or_new(room);
        view.lines.push(Line {
            key: format!("c{cid}"),
            seq: None,
            from: nick,
            text: text.to_owned(),
            ts,
            cid: Some(cid.to_owned()),
            delivery: Delivery::Sending,
            system: false,
            own: true,
            changed: None,
            deleted: false,
            reply,
        });
    }

    /// Marks a failed message as sending again.
    pub fn retrying(&mut self, cid: &str) {
        for room in &mut self.rooms {
            for line in &mut room.lines {
                if line.cid.as_deref() == Some(cid) && line.seq.is_none() {
                    line.delivery = Delivery::Sending;
                }
            }
        }
    }

    /// Adds a notice to the room on screen.
    pub fn notice(&mut self, text: impl Into<String>, ts: i64) {
        let current = self.current.clone();
        self.room_or_new(&current).notice(text, ts);
    }
}
