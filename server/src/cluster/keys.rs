//! Every Redis key and channel cluster mode uses, in one place.
//!
//! Every key names the one hash slot it lives in (its `{tag}`), and no
//! script or transaction touches two tags, so the same commands run on one
//! Redis and on a sharded Redis Cluster:
//!
//! - a room's keys share the tag `{room}`;
//! - what concerns the processes as a whole (nodes and their heartbeats,
//!   nicknames, the lists of rooms) shares the tag `{:global}`, which no
//!   room can have (room names have no `:`);
//! - a session's keys have no tag: each hashes (and spreads) on its own,
//!   as do sign-in sessions and invites;
//! - an account's keys share a tag made from a digest of its key.

/// The room's last `seq` (INCR).
pub(crate) fn seq(room: &str) -> String {
    format!("chat:{{{room}}}:seq")
}

/// The room's stream: entry id `{seq}-0`, one field `m` (the message body).
pub(crate) fn log(room: &str) -> String {
    format!("chat:{{{room}}}:log")
}

/// The room's epoch (set once, with the first use).
pub(crate) fn epoch(room: &str) -> String {
    format!("chat:{{{room}}}:epoch")
}

/// Hash of the room's members: `{node}:{conn}` → nickname.
pub(crate) fn members(room: &str) -> String {
    format!("chat:{{{room}}}:members")
}

/// What a `(session, cid)` pair produced in the room: `"{seq}:{ts}"`.
pub(crate) fn cid(room: &str, session: &str, cid: &str) -> String {
    format!("chat:{{{room}}}:cid:{session}:{cid}")
}

/// The current body of the room's edited and deleted messages: hash of
/// `seq` → body JSON (a deleted one's without its text).
pub(crate) fn changed(room: &str) -> String {
    format!("chat:{{{room}}}:changed")
}

/// The `seq`s in [`changed`], scored by `seq` (what retention trims).
pub(crate) fn changes(room: &str) -> String {
    format!("chat:{{{room}}}:changes")
}

/// The room's pub/sub channel.
pub(crate) fn channel(room: &str) -> String {
    format!("chat:{{{room}}}")
}

/// The room named by a channel from [`channel`].
pub(crate) fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("chat:{")?.strip_suffix('}')
}

/// The hash tag of everything that concerns the processes as a whole.
pub(crate) const GLOBAL: &str = ":global";

/// Set of the rooms open on some process (a room leaves it when its last
/// member anywhere leaves).
pub(crate) const ROOMS: &str = "chat:{:global}:rooms";

/// Set of the rooms that have a stream (for the age sweep).
pub(crate) const LOGS: &str = "chat:{:global}:logs";

/// Held (briefly) by the node sweeping expired messages this period.
pub(crate) const EXPIRE_LOCK: &str = "chat:{:global}:expire-lock";

/// Set of every node that has registered.
pub(crate) const NODES: &str = "chat:{:global}:nodes";

/// Hash of held nicknames: look-alike key → holder
/// (`{node}:{conn}:{session}`, or `~{until}:{session}` for a session that
/// is not connected). Sessions appear only as hashes of their tokens.
pub(crate) const NICKS: &str = "chat:{:global}:nicks";

/// What a node's keys start with (the claim script builds its heartbeat's
/// key from a holder's node id).
pub(crate) const NODE_PREFIX: &str = "chat:{:global}:node:";

/// A node's heartbeat; expires when the node stops refreshing it.
pub(crate) fn node(node: &str) -> String {
    format!("{NODE_PREFIX}{node}")
}

/// Rooms a node has had members in.
pub(crate) fn node_rooms(node: &str) -> String {
    format!("{NODE_PREFIX}{node}:rooms")
}

/// Nicknames a node has claimed.
pub(crate) fn node_nicks(node: &str) -> String {
    format!("{NODE_PREFIX}{node}:nicks")
}

/// Where a session (its token's hash) is live: `{node}:{conn}`.
pub(crate) fn live(token: &str) -> String {
    format!("chat:live:{token}")
}

/// A node's control channel (`kill {conn} {token}`: a session moved away).
pub(crate) fn control(node: &str) -> String {
    format!("chat:ctl:{node}")
}

/// The channel every process listens to: sign-outs, and frames for an
/// account's connections (see `codec::notice_payload`).
pub(crate) const NOTICES: &str = "chat:notices";

/// The hash tag of an account's keys: a digest of its look-alike key
/// (names may hold any punctuation, braces too).
fn account_tag(key: &str) -> String {
    let digest = crate::ids::token_hash(&format!("account\n{key}"));
    format!("a:{}", &digest[..16])
}

/// An account: hash of `key`, `name`, `hash`, `admin`, `disabled`.
pub(crate) fn account(key: &str) -> String {
    format!("chat:{{{}}}:account", account_tag(key))
}

/// The account's sign-in sessions: sorted set of token hashes by opening.
pub(crate) fn account_sessions(key: &str) -> String {
    format!("chat:{{{}}}:signins", account_tag(key))
}

/// The private rooms (and direct messages) the account was let into.
pub(crate) fn account_rooms(key: &str) -> String {
    format!("chat:{{{}}}:rooms", account_tag(key))
}

/// The rooms the account is banned from.
pub(crate) fn account_banned(key: &str) -> String {
    format!("chat:{{{}}}:banned", account_tag(key))
}

/// A sign-in session (its token's hash): hash of `key`, `opened`, `seen`;
/// expires with the session.
pub(crate) fn signin(token: &str) -> String {
    format!("chat:signin:{token}")
}

/// An invite (its code's hash): hash of `uses`, `expires`, `by`; expires
/// with the invite.
pub(crate) fn invite(code: &str) -> String {
    format!("chat:invite:{code}")
}

/// A room's access rules: hash of `title`, `private`.
pub(crate) fn access(room: &str) -> String {
    format!("chat:{{{room}}}:access")
}

/// A room's roles: hash of account key → role.
pub(crate) fn roles(room: &str) -> String {
    format!("chat:{{{room}}}:roles")
}

/// A room's moderation record: list of JSON actions, newest first.
pub(crate) fn moderation(room: &str) -> String {
    format!("chat:{{{room}}}:moderation")
}

/// A saved session (its token's hash): JSON of its nickname and rooms.
pub(crate) fn session(token: &str) -> String {
    format!("chat:session:{token}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn channels_name_their_room() {
        assert_eq!(
            super::room_of_channel(&super::channel("a-b_1")),
            Some("a-b_1")
        );
        assert_eq!(super::room_of_channel("chat:node:x"), None);
    }
}
