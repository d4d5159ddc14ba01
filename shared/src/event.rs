//! Event names of the chat layer (PROTOCOL.md §2 and `docs/PROTOCOL.md`).

use crate::Name;

// Seed events: the original broadcasting example's behaviour.
/// Notify in: post the payload text to `lobby`.
pub const BROADCAST: &str = "broadcast";
/// Notify out: raw text of a `lobby` message, for connections that never said `hello`.
pub const MESSAGE: &str = "message";
/// Notify in: answered with [`PONG`] carrying the same payload.
pub const PING: &str = "ping";
/// Notify out: the answer to [`PING`].
pub const PONG: &str = "pong";
/// Request: the peer address as text.
pub const MYIP: &str = "myip";
/// Request: the payload upper-cased.
pub const UPPERCASE: &str = "uppercase";
/// Request: answers `done!` after 3 s unless reset (the name's spelling is the original's).
pub const LONG_RUNNING_TASK: &str = "long_runing_task";

// Rich events: JSON payloads.
/// Request: start or resume a session.
pub const HELLO: &str = "hello";
/// Request: join a room.
pub const JOIN: &str = "join";
/// Request: leave a room.
pub const LEAVE: &str = "leave";
/// Request: post a message.
pub const SAY: &str = "say";
/// Request: new text for one of the sender's messages.
pub const EDIT: &str = "edit";
/// Request: deletes a message (the sender's own; a moderator's: any).
pub const DELETE: &str = "delete";
/// Request: messages matching a search, in every room the sender may read.
pub const SEARCH: &str = "search";
/// Request: older messages of a room.
pub const HISTORY: &str = "history";
/// Request: the rooms that exist and their member counts.
pub const ROOMS: &str = "rooms";
/// Request: change nickname.
pub const NICK: &str = "nick";
/// Notify both ways: typing indicator.
pub const TYPING: &str = "typing";
/// Notify out: a chat message.
pub const MSG: &str = "msg";
/// Notify out: somebody joined, left or renamed.
pub const PRESENCE: &str = "presence";
/// Notify out: a room's service state changed (`ok` / `degraded`; cluster mode).
pub const ROOM_STATUS: &str = "room_status";

// Accounts' rooms: private rooms, direct messages, moderation.
/// Request: a new private room (`{"title"}`), joined at once.
pub const CREATE: &str = "create";
/// Request: a direct-message room with an account (`{"user"}`), joined.
pub const DM: &str = "dm";
/// Request: lets an account into a private room (`{"room", "user"}`).
pub const INVITE: &str = "invite";
/// Request: removes an account from a room (and a private room's members).
pub const KICK: &str = "kick";
/// Request: removes an account from a room for good.
pub const BAN: &str = "ban";
/// Request: lifts a ban.
pub const UNBAN: &str = "unban";
/// Request: makes an account a room's moderator (owners only).
pub const MODERATOR: &str = "moderator";
/// Request: a room's moderation record (its moderators only).
pub const ACTIONS: &str = "actions";
/// Notify out: this connection was taken out of a room.
pub const REMOVED: &str = "removed";
/// Notify out: this account was let into a private room.
pub const INVITED: &str = "invited";

/// The room every connection is in from the moment it opens.
pub const LOBBY: &str = "lobby";

/// [`Name`] constants for the events the server sends, so encoding them
/// allocates nothing.
pub mod name {
    use super::Name;
    /// `message`
    pub const MESSAGE: Name = Name::from_static(super::MESSAGE);
    /// `pong`
    pub const PONG: Name = Name::from_static(super::PONG);
    /// `msg`
    pub const MSG: Name = Name::from_static(super::MSG);
    /// `presence`
    pub const PRESENCE: Name = Name::from_static(super::PRESENCE);
    /// `typing`
    pub const TYPING: Name = Name::from_static(super::TYPING);
    /// `room_status`
    pub const ROOM_STATUS: Name = Name::from_static(super::ROOM_STATUS);
    /// `removed`
    pub const REMOVED: Name = Name::from_static(super::REMOVED);
    /// `invited`
    pub const INVITED: Name = Name::from_static(super::INVITED);
}

/// Builds a [`Name`] for a client-side event constant.
pub fn name(event: &'static str) -> Name {
    Name::from_static(event)
}
