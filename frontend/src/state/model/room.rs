//! One joined room as the UI shows it: its lines (messages, notices, this
//! user's pending ones) in order, members, who is typing, and how a room
//! state from the server (recovered or not) or older history lands in it.
//! Edits and deletions of its messages: `change`.

use shared::chat::{Msg, RoomState};

/// Delivery state of one of this user's messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Sent (or queued while offline), not acknowledged yet.
    Sending,
    /// Stored by the server.
    Sent,
    /// Refused or lost; the user may retry.
    Failed(String),
}

/// One line of a room's message list.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Stable key for the list (`s{seq}` once stored, `c{cid}` before).
    pub key: String,
    /// Position in the room, once stored.
    pub seq: Option<u64>,
    /// Author (empty for system lines).
    pub from: String,
    /// Text, shown as text.
    pub text: String,
    /// Unix milliseconds.
    pub ts: i64,
    /// Client id, for this user's messages.
    pub cid: Option<String>,
    /// Delivery state; `Sent` for other people's messages.
    pub delivery: Delivery,
    /// A notice from the app (presence, command output), not a message.
    pub system: bool,
    /// Sent by this user from this page (its delivery state is worth
    /// showing); other people's messages, and history, are not.
    pub own: bool,
    /// The `seq` of the latest edit or deletion applied to it.
    pub changed: Option<u64>,
    /// Deleted: its text is gone (the row says so instead).
    pub deleted: bool,
    /// The `seq` of the message (of the same room) this one answers.
    pub reply: Option<u64>,
}

impl Line {
    pub(super) fn from_msg(m: &Msg) -> Self {
        Line {
            key: format!("s{}", m.seq),
            seq: Some(m.seq),
            from: m.from.clone(),
            text: m.text.clone(),
            ts: m.ts,
            cid: m.cid.clone(),
            delivery: Delivery::Sent,
            system: false,
            own: false,
            changed: m.changed,
            deleted: m.deleted,
            reply: m.reply,
        }
    }

    /// Edited since it was posted (and still there).
    pub fn edited(&self) -> bool {
        self.changed.is_some() && !self.deleted
    }
}

/// How long someone counts as typing after their last "typing" (senders
/// repeat it every 3 s while they type, and say when they stop; this ends
/// it when that word never comes).
pub const TYPING_TTL_MS: i64 = 6_000;

/// Someone typing in a room.
#[derive(Debug, Clone, PartialEq)]
pub struct Typist {
    /// Their nickname.
    pub nick: String,
    /// When they were last heard typing (Unix ms).
    pub at: i64,
}

/// One joined room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomView {
    /// Room name.
    pub name: String,
    /// Messages, oldest first.
    pub lines: Vec<Line>,
    /// Member nicknames, sorted.
    pub members: Vec<String>,
    /// Unread messages (while another room is shown).
    pub unread: u32,
    /// Who is typing now.
    pub typing: Vec<Typist>,
    /// Whether older messages may exist on the server.
    pub has_older: bool,
    /// The server cannot store messages for this room right now.
    pub degraded: bool,
    /// The first message that came while this user was away (the "new"
    /// line goes above it), set when the room is shown.
    pub new_from: Option<u64>,
    /// A private room's title, or a direct message's two names (one per
    /// line); `None` for a public room.
    pub title: Option<String>,
    /// This account's role here (`owner`, `moderator`, `member`).
    pub role: Option<String>,
    /// The message this room's composer answers (see `reply`).
    pub replying: Option<u64>,
    /// The lowest `seq` of any entry placed here, changes included (older
    /// history is asked for before it).
    floor: Option<u64>,
    /// Edits and deletions of messages not loaded (yet), oldest first:
    /// applied when their message comes with older history.
    pub(super) kept_changes: Vec<Msg>,
    notice_counter: u64,
}

/// How a room is named on screen: `#name` for a public room, `🔒 title`
/// for a private one, `@other` for a direct message (`me` is this user).
pub fn label(name: &str, title: Option<&str>, me: &str) -> String {
    match title {
        Some(names) if name.starts_with("dm-") => {
            let other = names
                .lines()
                .find(|n| !n.eq_ignore_ascii_case(me))
                .unwrap_or(names);
            format!("@{other}")
        }
        Some(title) => format!("🔒 {title}"),
        None => format!("#{name}"),
    }
}

impl RoomView {
    /// Owners and moderators invite, kick and ban.
    pub fn moderated_by_me(&self) -> bool {
        matches!(self.role.as_deref(), Some("owner" | "moderator"))
    }

    pub(super) fn new(name: &str) -> Self {
        RoomView {
            name: name.to_owned(),
            ..RoomView::default()
        }
    }

    /// The oldest `seq` loaded: of a message shown, or of an edit or
    /// deletion (which has no line of its own).
    pub fn oldest_seq(&self) -> Option<u64> {
        self.floor
    }

    /// The newest stored `seq` shown.
    pub fn newest_seq(&self) -> Option<u64> {
        self.lines.iter().rev().find_map(|l| l.seq)
    }

    /// The nicknames of who is typing, in the order they started.
    pub fn typists(&self) -> Vec<String> {
        self.typing.iter().map(|t| t.nick.clone()).collect()
    }

    pub(super) fn stop_typing(&mut self, nick: &str) {
        self.typing.retain(|t| t.nick != nick);
    }

    /// Places a stored entry: a message gets its line (`true` when it is
    /// a new one); an edit or deletion changes its message's line instead.
    pub(super) fn push_msg(&mut self, m: &Msg) -> bool {
        self.floor = Some(self.floor.map_or(m.seq, |f| f.min(m.seq)));
        if m.kind.is_some() {
            self.apply_change(m);
            return false;
        }
        if let Some(cid) = &m.cid
            && let Some(line) = self
                .lines
                .iter_mut()
                .find(|l| l.seq.is_none() && l.cid.as_deref() == Some(cid))
        {
            let own = line.own;
            *line = Line::from_msg(m);
            line.own = own;
            return false;
        }
        if self.lines.iter().any(|l| l.seq == Some(m.seq)) {
            return false;
        }
        // Newer than everything shown: after the last line, but before this
        // user's own messages still waiting for the server. Older (history):
        // before the first stored message that follows it.
        let newest = self.lines.iter().filter_map(|l| l.seq).max();
        let at = if newest.is_none_or(|n| m.seq > n) {
            self.lines
                .iter()
                .position(|l| l.seq.is_none() && !l.system)
                .unwrap_or(self.lines.len())
        } else {
            self.lines
                .iter()
                .position(|l| l.seq.is_some_and(|s| s > m.seq))
                .unwrap_or(self.lines.len())
        };
        let line = self.line_of(m);
        self.lines.insert(at, line);
        self.stop_typing(&m.from);
        true
    }

    pub(super) fn apply_state(&mut self, state: &RoomState) {
        self.title.clone_from(&state.title);
        self.role.clone_from(&state.role);
        let pending: Vec<Line> = self
            .lines
            .iter()
            .filter(|l| l.seq.is_none() && !l.system)
            .cloned()
            .collect();
        // Older messages exist before the first one sent, or, when none was
        // sent (the server's reply had no room for them), before `seq`.
        let has_older = state.history.first().map_or(state.seq > 0, |m| m.seq > 1);
        if !state.recovered {
            // A different history (or a gap): replace the view.
            self.lines.clear();
            self.floor = None;
            self.kept_changes.clear();
            self.has_older = has_older;
        } else if self.lines.is_empty() {
            self.has_older = has_older;
        }
        self.lines.retain(|l| l.seq.is_some() || l.system);
        for m in &state.history {
            self.push_msg(m);
        }
        for line in pending {
            if !self.lines.iter().any(|l| l.cid == line.cid) {
                self.lines.push(line);
            }
        }
        self.members.clone_from(&state.members);
    }

    /// Adds a notice line.
    pub fn notice(&mut self, text: impl Into<String>, ts: i64) {
        self.notice_counter += 1;
        self.lines.push(Line {
            key: format!("n{}", self.notice_counter),
            seq: None,
            from: String::new(),
            text: text.into(),
            ts,
            cid: None,
            delivery: Delivery::Sent,
            system: true,
            own: false,
            changed: None,
            deleted: false,
            reply: None,
        });
    }

    /// Puts older messages (from `history`) in front.
    pub fn prepend(&mut self, older: &[Msg]) {
        if older.is_empty() {
            self.has_older = false;
            return;
        }
        self.has_older = older.first().is_some_and(|m| m.seq > 1);
        for m in older {
            self.push_msg(m);
        }
    }
}
