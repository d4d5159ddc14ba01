//! JSON payloads of the chat layer, and the response envelope.
//!
//! Field names are the wire names. Optional fields are omitted when absent.

use serde::{Deserialize, Serialize};

/// The last message a client has seen in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Room name.
    pub room: String,
    /// The room history this cursor belongs to.
    pub epoch: String,
    /// The last `seq` seen.
    pub seq: u64,
}

/// A chat message as stored and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg {
    /// Room name.
    pub room: String,
    /// The room history it belongs to.
    pub epoch: String,
    /// Position in the room, contiguous from 1.
    pub seq: u64,
    /// Author's nickname at the time of posting.
    pub from: String,
    /// The text, as sent.
    pub text: String,
    /// Unix milliseconds, server clock.
    pub ts: i64,
    /// The author's client id for this message, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// What this entry is when it is not a message: an `edit` (its `text`
    /// replaces message `of`'s) or a `delete` (message `of` is gone; `from`
    /// is who deleted it). Such entries have their own `seq`, so a client
    /// that was away recovers them like messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Change>,
    /// The message an `edit` or `delete` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<u64>,
    /// A message: the `seq` of the latest edit or delete applied to it
    /// (history and joins send messages in their final state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<u64>,
    /// A message that was deleted: its `text` is empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The message this one answers (its `seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<u64>,
}

/// What a change entry does to the message it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Replaces the text.
    Edit,
    /// Removes the text for good.
    Delete,
}

impl Msg {
    /// A plain message (not a change).
    pub fn new(room: String, epoch: String, seq: u64, from: String, text: String, ts: i64) -> Self {
        Self {
            room,
            epoch,
            seq,
            from,
            text,
            ts,
            cid: None,
            kind: None,
            of: None,
            changed: None,
            deleted: false,
            reply: None,
        }
    }

    /// Applies the change entry `change` to this message, if it is the
    /// message it names and newer than what was applied: `true` if it did.
    pub fn apply(&mut self, change: &Msg) -> bool {
        let newer = self.changed.is_none_or(|seen| change.seq > seen);
        if change.of != Some(self.seq) || self.kind.is_some() || self.deleted || !newer {
            return false;
        }
        match change.kind {
            Some(Change::Edit) => self.text = change.text.clone(),
            Some(Change::Delete) => {
                self.text.clear();
                self.deleted = true;
            }
            None => return false,
        }
        self.changed = Some(change.seq);
        true
    }
}

/// `search` request: words (each the start of a word) and filters
/// (`from:NAME`, `in:ROOM`, `before:YYYY-MM-DD`, `after:YYYY-MM-DD`); the
/// ok value is `[Msg]`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// What the person typed.
    pub q: String,
    /// Results wanted (the server caps it at 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u16>,
}

/// `edit` request: new text for one of the sender's messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// Room name.
    pub room: String,
    /// The message's `seq`.
    pub seq: u64,
    /// Its new text.
    pub text: String,
    /// Client-chosen id that makes retries safe (as `say`'s).
    pub cid: String,
}

/// `delete` request: removes one of the sender's messages (or anyone's,
/// for the room's moderators).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    /// Room name.
    pub room: String,
    /// The message's `seq`.
    pub seq: u64,
    /// Client-chosen id that makes retries safe.
    pub cid: String,
}

/// A room as seen by a member right after joining.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// Room name.
    pub room: String,
    /// Its current history.
    pub epoch: String,
    /// The latest `seq` (0 when empty).
    pub seq: u64,
    /// Nicknames of the members, sorted.
    pub members: Vec<String>,
    /// Replayed messages when `recovered`, else the latest ones (oldest first).
    pub history: Vec<Msg>,
    /// `true` when `history` is exactly what the client missed since its cursor.
    pub recovered: bool,
    /// A private room's or direct message's title (a direct message: the
    /// two account names, one per line); absent for a public room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The member's role here when it has one (`owner`, `moderator`,
    /// `member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `hello` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version; must be 1.
    pub v: u32,
    /// Wanted nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// Session token from an earlier `hello`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Where the client was in each room it wants back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Vec<Cursor>>,
}

/// `hello` ok value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Session token: keep it to resume.
    pub session: String,
    /// The nickname granted (may carry a suffix).
    pub nick: String,
    /// Every room the session is in.
    pub rooms: Vec<RoomState>,
}

/// `join` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// Room name.
    pub room: String,
    /// Where the client was, to recover what it missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Cursor>,
}

/// `leave` request, and the room part of other requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRef {
    /// Room name.
    pub room: String,
}

/// `say` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Say {
    /// Room name.
    pub room: String,
    /// Message text.
    pub text: String,
    /// Client-chosen id that makes retries safe.
    pub cid: String,
    /// The message this one answers (its `seq` in the room).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<u64>,
}

/// `say` ok value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Said {
    /// Position given to the message.
    pub seq: u64,
    /// Server time it was stored, Unix milliseconds.
    pub ts: i64,
}

/// `history` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// Room name.
    pub room: String,
    /// Exclusive upper bound on `seq`.
    pub before: u64,
    /// How many messages at most (the server caps it).
    pub limit: u16,
}

/// One row of the `rooms` ok value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Room name.
    pub room: String,
    /// Members connected now.
    pub members: u32,
    /// A private room's or direct message's title (listed to its members
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `nick` request and ok value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nick {
    /// Nickname.
    pub nick: String,
}

/// `typing` notify, client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingIn {
    /// Room name.
    pub room: String,
    /// Started (`true`) or stopped typing.
    pub on: bool,
}

/// `typing` notify, server → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingOut {
    /// Room name.
    pub room: String,
    /// Who.
    pub nick: String,
    /// Started (`true`) or stopped typing.
    pub on: bool,
}

/// `room_status` notify, server → client: whether the room can take new
/// messages. `degraded`: the back-end shared between server processes is
/// unreachable, so `say` answers `unavailable` and other processes'
/// messages wait; `ok`: it is back (missed messages follow as `msg`s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomStatus {
    /// Room name.
    pub room: String,
    /// `ok` or `degraded`.
    pub state: Health,
}

/// The states a [`RoomStatus`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Working normally.
    Ok,
    /// The shared back-end is unreachable.
    Degraded,
}

/// What a presence event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceKind {
    /// Someone joined.
    Join,
    /// Someone left or disconnected.
    Leave,
    /// Someone changed nickname (`old` is set).
    Rename,
}

/// `presence` notify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Room name.
    pub room: String,
    /// Who (the new nickname for a rename).
    pub nick: String,
    /// What happened.
    pub what: PresenceKind,
    /// The previous nickname, for a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// Members after the change.
    pub members: u32,
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The payload is not what the event expects.
    BadRequest,
    /// The connection is not a member of that room.
    NotJoined,
    /// Another live session has that nickname.
    NickTaken,
    /// A text, nickname or room name is over its limit.
    TooLong,
    /// Too many messages too fast.
    RateLimited,
    /// No such event.
    UnknownEvent,
    /// The connection is in as many rooms as allowed.
    TooManyRooms,
    /// The server cannot store messages right now; retry later.
    Unavailable,
    /// A bug or an unexpected failure on the server.
    Internal,
    /// No such room, or one the client may not see (they answer alike).
    NoSuchRoom,
    /// Not allowed: signed out, not a moderator, banned.
    Forbidden,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::NickTaken => "nick_taken",
            ErrorCode::TooLong => "too_long",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::NoSuchRoom => "no_such_room",
            ErrorCode::Forbidden => "forbidden",
        }
    }
}

/// The error half of the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl ErrorBody {
    /// An error with a code and a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Every Response to a rich Request: `{"ok": VALUE}` or `{"err": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Envelope<T> {
    /// Success.
    Ok(T),
    /// Failure.
    Err(ErrorBody),
}

impl<T> From<Result<T, ErrorBody>> for Envelope<T> {
    fn from(r: Result<T, ErrorBody>) -> Self {
        match r {
            Ok(v) => Envelope::Ok(v),
            Err(e) => Envelope::Err(e),
        }
    }
}

impl<T> From<Envelope<T>> for Result<T, ErrorBody> {
    fn from(e: Envelope<T>) -> Self {
        match e {
            Envelope::Ok(v) => Ok(v),
            Envelope::Err(e) => Err(e),
        }
    }
}

impl<T: Serialize> Envelope<T> {
    /// The JSON bytes of the envelope.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing these plain types cannot fail (no maps with non-string
        // keys, no custom serializers); fall back to an `internal` error anyway.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"err":{"code":"internal","message":"response could not be encoded"}}"#.to_vec()
        })
    }
}

/// Reads an envelope from a Response payload.
pub fn parse_envelope<T: for<'de> Deserialize<'de>>(
    payload: &[u8],
) -> Result<Result<T, ErrorBody>, serde_json::Error> {
    serde_json::from_slice::<Envelope<T>>(payload).map(Into::into)
}

/// `{}`: the ok value of requests that return nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}
