//! What the chat client tells the app ([`ChatEvent`]) and how its calls
//! fail ([`ChatError`]): plain data, no browser here.

use crate::net::socket::{CallError, Status};
use shared::chat::{ErrorBody, Msg, Presence, RoomState, RoomStatus, Said, TypingOut, Welcome};

/// What the app is told.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The connection changed.
    Status(Status),
    /// A `hello` succeeded (first connect or reconnect).
    Welcome(Welcome),
    /// A room was joined.
    Joined(RoomState),
    /// A room was left.
    Left(String),
    /// A new message, in `seq` order per room, never twice.
    Msg(Msg),
    /// Somebody joined, left or renamed.
    Presence(Presence),
    /// Somebody is (not) typing.
    Typing(TypingOut),
    /// A room became degraded (the server cannot store messages for now) or
    /// recovered.
    RoomStatus(RoomStatus),
    /// The server answered a `say`.
    Said {
        /// The message's client id.
        cid: String,
        /// Stored, or why not.
        result: Result<Said, ErrorBody>,
    },
    /// The server granted this nickname (asked for after a `hello`).
    Nick(String),
    /// This account was let into a private room or a direct message.
    Invited(shared::rooms::Invited),
    /// This connection was taken out of a room (kicked or banned).
    Removed(shared::rooms::Removed),
    /// Something failed that the user should hear about.
    Error(String),
}

/// Errors of a chat call.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatError {
    /// No answer (see [`CallError`]).
    Call(CallError),
    /// The server refused.
    Server(ErrorBody),
    /// The answer was not understood.
    BadAnswer,
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::Call(e) => write!(f, "{e}"),
            ChatError::Server(e) => f.write_str(&e.message),
            ChatError::BadAnswer => f.write_str("the server's answer was not understood"),
        }
    }
}
