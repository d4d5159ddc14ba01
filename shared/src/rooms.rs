//! Payloads of the accounts' room events (`docs/PROTOCOL.md`, "Private
//! rooms, direct messages and moderation").

use serde::{Deserialize, Serialize};

/// `create` request: a new private room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Create {
    /// What its members see as its name.
    pub title: String,
}

/// `dm` request: the direct-message room with this account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dm {
    /// The other account's name.
    pub user: String,
}

/// `invite`, `kick`, `ban`, `unban`, `moderator` request: an account in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomUser {
    /// Room name.
    pub room: String,
    /// The account's name.
    pub user: String,
}

/// `removed` notify: this connection is no longer in `room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Room name.
    pub room: String,
    /// Who removed it (an account name).
    pub by: String,
    /// For good (`ban`), or until invited or rejoining (`kick`).
    pub banned: bool,
}

/// `invited` notify: this account may now enter a private room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invited {
    /// Room name.
    pub room: String,
    /// Its title.
    pub title: String,
    /// Who let it in (an account name).
    pub by: String,
}

/// One row of the `actions` ok value: a moderation action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionInfo {
    /// Unix milliseconds.
    pub at: i64,
    /// Who did it.
    pub by: String,
    /// `invite`, `kick`, `ban`, `unban`, `moderator`.
    pub what: String,
    /// To whom.
    pub whom: String,
}
