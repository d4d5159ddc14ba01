//! The chat as the UI shows it: plain data with plain methods, turned from
//! [`ChatEvent`]s. No signals here, so it is tested without a browser.

use crate::net::{chat::ChatEvent, socket::Status};
use shared::chat::{Msg, PresenceKind, RoomState};

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
}

impl Line {
    fn from_msg(m: &Msg) -> Self {
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
        }
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
    notice_counter: u64,
}

impl RoomView {
    fn new(name: &str) -> Self {
        RoomView {
            name: name.to_owned(),
            ..RoomView::default()
        }
    }

    /// The oldest stored `seq` shown.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.lines.iter().find_map(|l| l.seq)
    }

    /// The newest stored `seq` shown.
    pub fn newest_seq(&self) -> Option<u64> {
        self.lines.iter().rev().find_map(|l| l.seq)
    }

    /// The nicknames of who is typing, in the order they started.
    pub fn typists(&self) -> Vec<String> {
        self.typing.iter().map(|t| t.nick.clone()).collect()
    }

    fn stop_typing(&mut self, nick: &str) {
        self.typing.retain(|t| t.nick != nick);
    }

    fn push_msg(&mut self, m: &Msg) -> bool {
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
        self.lines.insert(at, Line::from_msg(m));
        self.stop_typing(&m.from);
        true
    }

    fn apply_state(&mut self, state: &RoomState) {
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

    /// Adds this user's message as "sending".
    pub fn local_say(&mut self, room: &str, cid: &str, text: &str, ts: i64) {
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

    /// Applies what the client reported.
    pub fn apply(&mut self, event: ChatEvent, now: i64) {
        match event {
            ChatEvent::Status(status) => self.status = status,
            ChatEvent::Welcome(welcome) => {
                self.nick = welcome.nick;
                // The session is in exactly these rooms (a room it was in
                // may be gone, e.g. a server that lost its last save).
                self.rooms
                    .retain(|r| welcome.rooms.iter().any(|s| s.room == r.name));
                for state in &welcome.rooms {
                    self.room_or_new(&state.room).apply_state(state);
                }
                if self.room(&self.current).is_none() {
                    self.current = shared::event::LOBBY.to_owned();
                }
                let current = self.current.clone();
                if self.room(&current).is_some_and(|r| r.new_from.is_none()) {
                    self.arrive(&current);
                } else {
                    self.mark_read(&current);
                }
            }
            ChatEvent::Joined(state) => {
                self.room_or_new(&state.room).apply_state(&state);
            }
            ChatEvent::Left(room) => {
                self.rooms.retain(|r| r.name != room);
                if self.current == room {
                    self.current = self
                        .rooms
                        .first()
                        .map_or_else(|| shared::event::LOBBY.to_owned(), |r| r.name.clone());
                }
            }
            ChatEvent::Msg(m) => {
                let on_screen = self.current == m.room;
                if let Some(room) = self.room_mut(&m.room)
                    && room.push_msg(&m)
                    && !on_screen
                {
                    room.unread += 1;
                }
                if on_screen {
                    self.mark_read(&m.room);
                }
            }
            ChatEvent::Presence(p) => {
                let me = self.nick.clone();
                if let Some(room) = self.room_mut(&p.room) {
                    let text = match p.what {
                        PresenceKind::Join => {
                            if !room.members.contains(&p.nick) {
                                room.members.push(p.nick.clone());
                            }
                            format!("{} joined", p.nick)
                        }
                        PresenceKind::Leave => {
                            room.members.retain(|n| n != &p.nick);
                            room.stop_typing(&p.nick);
                            format!("{} left", p.nick)
                        }
                        PresenceKind::Rename => {
                            let old = p.old.clone().unwrap_or_default();
                            room.members.retain(|n| n != &old);
                            if !room.members.contains(&p.nick) {
                                room.members.push(p.nick.clone());
                            }
                            format!("{old} is now {}", p.nick)
                        }
                    };
                    room.members.sort_by_key(|n| n.to_lowercase());
                    // Guests coming, going and naming themselves in the
                    // lobby would drown it.
                    let guest = |n: &str| n.starts_with("guest-");
                    let noisy = p.room == shared::event::LOBBY
                        && (guest(&p.nick) || p.old.as_deref().is_some_and(guest));
                    if !noisy && p.nick != me {
                        room.notice(text, now);
                    }
                }
            }
            ChatEvent::RoomStatus(status) => {
                if let Some(room) = self.room_mut(&status.room) {
                    let degraded = status.state == shared::chat::Health::Degraded;
                    if room.degraded != degraded {
                        room.degraded = degraded;
                        room.notice(
                            if degraded {
                                "The chat service is degraded: new messages wait until it is back"
                            } else {
                                "The chat service is back"
                            },
                            now,
                        );
                    }
                }
            }
            ChatEvent::Typing(t) => {
                if let Some(room) = self.room_mut(&t.room) {
                    match room.typing.iter_mut().find(|x| x.nick == t.nick) {
                        Some(typist) if t.on => typist.at = now,
                        Some(_) => room.stop_typing(&t.nick),
                        None if t.on => room.typing.push(Typist {
                            nick: t.nick,
                            at: now,
                        }),
                        None => {}
                    }
                }
            }
            ChatEvent::Said { cid, result } => {
                for room in &mut self.rooms {
                    if let Some(line) = room
                        .lines
                        .iter_mut()
                        .find(|l| l.cid.as_deref() == Some(cid.as_str()))
                    {
                        match &result {
                            Ok(said) => {
                                line.delivery = Delivery::Sent;
                                if line.seq.is_none() {
                                    line.ts = said.ts;
                                }
                            }
                            Err(e) => line.delivery = Delivery::Failed(e.message.clone()),
                        }
                    }
                }
            }
            ChatEvent::Error(message) => self.notice(message, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::chat::{ErrorBody, ErrorCode, Presence, Said, Welcome};

    fn msg(room: &str, seq: u64, from: &str, cid: Option<&str>) -> Msg {
        Msg {
            room: room.into(),
            epoch: "e".into(),
            seq,
            from: from.into(),
            text: format!("t{seq}"),
            ts: 1,
            cid: cid.map(Into::into),
        }
    }

    fn state(room: &str, history: Vec<Msg>, recovered: bool) -> RoomState {
        RoomState {
            room: room.into(),
            epoch: "e".into(),
            seq: history.last().map_or(0, |m| m.seq),
            members: vec!["ann".into(), "bob".into()],
            history,
            recovered,
        }
    }

    fn welcomed() -> Model {
        let mut m = Model::default();
        m.apply(
            ChatEvent::Welcome(Welcome {
                session: "s".into(),
                nick: "ann".into(),
                rooms: vec![state("lobby", vec![msg("lobby", 1, "bob", None)], false)],
            }),
            0,
        );
        m
    }

    #[test]
    fn own_message_goes_sending_then_replaced_by_the_stored_one() {
        let mut m = welcomed();
        m.local_say("lobby", "c1", "hi", 5);
        assert_eq!(
            m.rooms[0].lines.last().map(|l| &l.delivery),
            Some(&Delivery::Sending)
        );
        m.apply(ChatEvent::Msg(msg("lobby", 2, "ann", Some("c1"))), 0);
        m.apply(
            ChatEvent::Said {
                cid: "c1".into(),
                result: Ok(Said { seq: 2, ts: 1 }),
            },
            0,
        );
        let lines = &m.rooms[0].lines;
        assert_eq!(lines.len(), 2, "replaced, not duplicated");
        assert_eq!(lines[1].seq, Some(2));
        assert_eq!(lines[1].delivery, Delivery::Sent);
    }

    #[test]
    fn new_messages_follow_notices_and_precede_own_pending_ones() {
        let mut m = welcomed();
        m.room_mut("lobby").expect("lobby").notice("bob joined", 0);
        m.local_say("lobby", "c1", "mine", 5);
        m.apply(ChatEvent::Msg(msg("lobby", 2, "bob", None)), 0);
        let order: Vec<_> = m.rooms[0].lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(order, ["t1", "bob joined", "t2", "mine"]);
    }

    #[test]
    fn failed_say_is_marked_and_retry_marks_it_sending() {
        let mut m = welcomed();
        m.local_say("lobby", "c9", "x", 5);
        m.apply(
            ChatEvent::Said {
                cid: "c9".into(),
                result: Err(ErrorBody::new(ErrorCode::TooLong, "too long")),
            },
            0,
        );
        assert_eq!(
            m.rooms[0].lines.last().map(|l| l.delivery.clone()),
            Some(Delivery::Failed("too long".into()))
        );
        m.retrying("c9");
        assert_eq!(
            m.rooms[0].lines.last().map(|l| l.delivery.clone()),
            Some(Delivery::Sending)
        );
    }

    #[test]
    fn unread_counts_only_rooms_not_on_screen() {
        let mut m = welcomed();
        m.apply(ChatEvent::Joined(state("rust", vec![], false)), 0);
        m.apply(ChatEvent::Msg(msg("rust", 1, "bob", None)), 0);
        m.apply(ChatEvent::Msg(msg("lobby", 2, "bob", None)), 0);
        assert_eq!(m.room("rust").map(|r| r.unread), Some(1));
        assert_eq!(m.room("lobby").map(|r| r.unread), Some(0));
        m.show("rust");
        assert_eq!(m.room("rust").map(|r| r.unread), Some(0));
    }

    #[test]
    fn recovered_state_appends_and_unrecovered_replaces_but_keeps_pending() {
        let mut m = welcomed();
        m.local_say("lobby", "p1", "queued", 5);
        let recovered = state("lobby", vec![msg("lobby", 2, "bob", None)], true);
        m.apply(ChatEvent::Joined(recovered), 0);
        let seqs: Vec<_> = m.rooms[0].lines.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, [Some(1), Some(2), None]);
        let fresh = state("lobby", vec![msg("lobby", 7, "bob", None)], false);
        m.apply(ChatEvent::Joined(fresh), 0);
        let seqs: Vec<_> = m.rooms[0].lines.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, [Some(7), None], "replaced; the queued message stays");
    }

    #[test]
    fn room_status_flags_the_room_once() {
        let mut m = welcomed();
        let status = |state| {
            ChatEvent::RoomStatus(shared::chat::RoomStatus {
                room: "lobby".into(),
                state,
            })
        };
        let notices = |m: &Model| m.rooms[0].lines.iter().filter(|l| l.system).count();
        let start = notices(&m);
        m.apply(status(shared::chat::Health::Degraded), 1);
        m.apply(status(shared::chat::Health::Degraded), 2);
        assert!(m.rooms[0].degraded);
        assert_eq!(notices(&m), start + 1, "told once");
        m.apply(status(shared::chat::Health::Ok), 3);
        assert!(!m.rooms[0].degraded);
        assert_eq!(notices(&m), start + 2);
    }

    #[test]
    fn presence_and_typing_update_members() {
        let mut m = welcomed();
        m.apply(
            ChatEvent::Presence(Presence {
                room: "lobby".into(),
                nick: "cy".into(),
                what: PresenceKind::Join,
                old: None,
                members: 3,
            }),
            0,
        );
        assert_eq!(m.rooms[0].members, ["ann", "bob", "cy"]);
        m.apply(
            ChatEvent::Presence(Presence {
                room: "lobby".into(),
                nick: "Bo".into(),
                what: PresenceKind::Rename,
                old: Some("bob".into()),
                members: 3,
            }),
            0,
        );
        assert_eq!(m.rooms[0].members, ["ann", "Bo", "cy"]);
        m.apply(
            ChatEvent::Typing(shared::chat::TypingOut {
                room: "lobby".into(),
                nick: "cy".into(),
                on: true,
            }),
            0,
        );
        assert_eq!(m.rooms[0].typists(), ["cy"]);
        m.apply(ChatEvent::Msg(msg("lobby", 2, "cy", None)), 0);
        assert!(m.rooms[0].typing.is_empty(), "a message ends typing");
    }

    fn typing(room: &str, nick: &str, on: bool) -> ChatEvent {
        ChatEvent::Typing(shared::chat::TypingOut {
            room: room.into(),
            nick: nick.into(),
            on,
        })
    }

    #[test]
    fn typing_ends_when_it_is_no_longer_repeated() {
        let mut m = welcomed();
        m.apply(typing("lobby", "cy", true), 1_000);
        assert!(!m.expire_typing(1_000 + TYPING_TTL_MS - 1));
        // Repeated "on" keeps it alive; silence ends it.
        m.apply(typing("lobby", "cy", true), 4_000);
        assert!(!m.expire_typing(1_000 + TYPING_TTL_MS + 1));
        assert_eq!(m.rooms[0].typists(), ["cy"]);
        assert!(m.expire_typing(4_000 + TYPING_TTL_MS));
        assert!(m.rooms[0].typing.is_empty());
        assert!(!m.anyone_typing());
    }

    #[test]
    fn a_welcome_drops_rooms_the_session_is_not_in() {
        let mut m = welcomed();
        m.apply(ChatEvent::Joined(state("gone", vec![], false)), 0);
        m.show("gone");
        m.apply(
            ChatEvent::Welcome(Welcome {
                session: "s".into(),
                nick: "ann".into(),
                rooms: vec![state("lobby", vec![], true)],
            }),
            0,
        );
        assert!(m.room("gone").is_none());
        assert_eq!(m.current, "lobby");
    }

    #[test]
    fn messages_that_came_while_away_get_a_new_line() {
        let mut m = welcomed();
        m.apply(
            ChatEvent::Joined(state("r", vec![msg("r", 1, "bob", None)], false)),
            0,
        );
        m.show("r");
        assert_eq!(m.room("r").and_then(|r| r.new_from), None);
        m.show("lobby");
        m.apply(ChatEvent::Msg(msg("r", 2, "bob", None)), 0);
        m.apply(ChatEvent::Msg(msg("r", 3, "bob", None)), 0);
        m.show("r");
        assert_eq!(m.room("r").and_then(|r| r.new_from), Some(2));
        assert_eq!(m.read.get("r"), Some(&3));
        // Seen now: the next visit has no line.
        m.show("lobby");
        assert_eq!(m.room("r").and_then(|r| r.new_from), None);
        m.show("r");
        assert_eq!(m.room("r").and_then(|r| r.new_from), None);
        assert!(m.marks_changed);
    }

    #[test]
    fn only_own_messages_are_own_and_guests_renaming_in_the_lobby_are_quiet() {
        let mut m = welcomed();
        m.local_say("lobby", "c1", "mine", 5);
        m.apply(ChatEvent::Msg(msg("lobby", 2, "ann", Some("c1"))), 0);
        m.apply(ChatEvent::Msg(msg("lobby", 3, "bob", Some("other"))), 0);
        let own: Vec<bool> = m.rooms[0].lines.iter().map(|l| l.own).collect();
        assert_eq!(own, [false, true, false]);
        let before = m.rooms[0].lines.len();
        m.apply(
            ChatEvent::Presence(Presence {
                room: "lobby".into(),
                nick: "kira".into(),
                what: PresenceKind::Rename,
                old: Some("guest-3".into()),
                members: 3,
            }),
            0,
        );
        assert_eq!(m.rooms[0].lines.len(), before, "no 'guest-3 is now kira'");
        assert!(m.rooms[0].members.contains(&"kira".to_owned()));
    }

    #[test]
    fn older_history_goes_in_front_in_order() {
        let mut m = Model::default();
        m.apply(
            ChatEvent::Joined(state(
                "r",
                vec![msg("r", 5, "a", None), msg("r", 6, "a", None)],
                false,
            )),
            0,
        );
        assert!(m.rooms[0].has_older);
        m.room_mut("r")
            .expect("room")
            .prepend(&[msg("r", 1, "a", None), msg("r", 4, "a", None)]);
        let seqs: Vec<_> = m.rooms[0].lines.iter().filter_map(|l| l.seq).collect();
        assert_eq!(seqs, [1, 4, 5, 6]);
        assert!(!m.rooms[0].has_older);
    }

    #[test]
    fn a_state_without_history_but_with_messages_offers_older_ones() {
        let mut m = Model::default();
        let mut empty = state("r", Vec::new(), false);
        empty.seq = 40;
        m.apply(ChatEvent::Joined(empty), 0);
        assert!(m.rooms[0].has_older, "40 messages are there to load");
        let mut m = Model::default();
        m.apply(ChatEvent::Joined(state("r", Vec::new(), false)), 0);
        assert!(!m.rooms[0].has_older, "an empty room has nothing older");
    }
}
