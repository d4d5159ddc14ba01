//! The ports a room's core talks to: the [`Log`] that stores a room's
//! entries and gives each its `seq`, and the [`Bus`] that carries what
//! other processes did to the room. One pipeline for every backend:
//! memory, SQLite and Redis implement these; the room core never asks
//! which one it has.
//!
//! A room appends an entry, the log answers where it was placed (`seq`,
//! in the order appended), and the room delivers entries in `seq` order
//! once stored, whether they came from its own appends or from the bus.
//! A gap (the bus may drop) is read back from the log.

use crate::ids::ConnId;
use shared::chat::{Msg, PresenceKind};
use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};
use tokio::sync::{mpsc, oneshot};

/// A store failed: the store's own error (`sqlite::Error`,
/// `cluster::Error`), opaque above the ports, or the store is gone.
/// Cheap to clone: one failed commit answers every append it held.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store's task has stopped (the server is shutting down).
    #[error("history store stopped")]
    Stopped,
    /// The store could not do it.
    #[error("history store: {0}")]
    Failed(Arc<dyn std::error::Error + Send + Sync>),
    /// An edit or delete the room's log refuses (nothing was stored).
    #[error("{0}")]
    Refused(Refusal),
}

/// Why the log refuses an edit or a delete. Checked where the room's
/// entries are kept, at the moment the change is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such message in the room (never was, or no longer kept), or
    /// the entry named is itself a change.
    #[error("there is no such message in this room")]
    NoSuchMessage,
    /// Somebody else's message (and the sender may not delete it).
    #[error("that message is not yours")]
    NotYours,
    /// Already deleted.
    #[error("that message was deleted")]
    Deleted,
    /// Edits are allowed for [`EDIT_WINDOW_MS`] after posting.
    #[error("messages can be edited for 24 hours after they are posted")]
    TooLate,
}

/// How long after posting a message its author may edit it (ms).
pub const EDIT_WINDOW_MS: i64 = 24 * 3_600_000;

/// What an entry does to an earlier message, when it is a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeOf {
    /// Edit or delete.
    pub kind: shared::chat::Change,
    /// The message's `seq`.
    pub of: u64,
    /// The sender moderates the room: it may delete anyone's message.
    pub any: bool,
}

/// Whether `change` (by `author`, at `ts`) may apply to `target` (by
/// `target_author`): the one rule every store applies (Redis's script
/// mirrors it).
pub fn check_change(
    target: &Msg,
    target_author: Option<&str>,
    change: &ChangeOf,
    author: Option<&str>,
    ts: i64,
) -> Result<(), Refusal> {
    if target.kind.is_some() {
        return Err(Refusal::NoSuchMessage);
    }
    if target.deleted {
        return Err(Refusal::Deleted);
    }
    let mine = author.is_some() && author == target_author;
    match change.kind {
        shared::chat::Change::Edit if !mine => Err(Refusal::NotYours),
        shared::chat::Change::Edit if ts - target.ts > EDIT_WINDOW_MS => Err(Refusal::TooLate),
        shared::chat::Change::Delete if !mine && !change.any => Err(Refusal::NotYours),
        _ => Ok(()),
    }
}

impl StoreError {
    /// A store's own error.
    pub fn failed(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Failed(Arc::new(e))
    }
}

/// A boxed future of a store read.
pub type Read<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// An entry to append: a message without its place yet.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Author nickname.
    pub from: String,
    /// The text.
    pub text: String,
    /// When it was posted (ms since the Unix epoch, server clock).
    pub ts: i64,
    /// The author's id for it.
    pub cid: Option<String>,
    /// The author's session, which scopes the `cid`.
    pub session: Option<String>,
    /// Who wrote it, for edits and deletes: `a:{account key}` signed in,
    /// `s:{session}` a guest (kept by the store, never sent).
    pub author: Option<String>,
    /// An edit or delete of an earlier message.
    pub change: Option<ChangeOf>,
    /// The message this one answers.
    pub reply: Option<u64>,
}

/// Where an appended entry was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its `seq`.
    pub seq: u64,
    /// Its timestamp (the original one for a retry).
    pub ts: i64,
    /// The room's history it went into.
    pub epoch: String,
    /// `false`: this `(session, cid)` was placed before, at `seq`.
    pub fresh: bool,
}

/// A room as its log knows it: what a room core starts from (and
/// re-reads after an outage).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The room's history.
    pub epoch: String,
    /// Its latest `seq` (0: none).
    pub head: u64,
    /// The latest entries, oldest first.
    pub recent: Vec<Msg>,
    /// Members on other processes: a key naming each (`{node}:{conn}`) →
    /// nick (empty in one process).
    pub members: HashMap<String, String>,
}

/// A room's stored entries, for every room of the store. Appends of one
/// room resolve in the order they were made.
pub trait Log: Send + Sync {
    /// Places `entry` at the room's next `seq` (or, for a `(session, cid)`
    /// it placed before, answers that place).
    fn append(&self, room: &str, entry: Entry) -> oneshot::Receiver<Result<Placed, StoreError>>;
    /// Whether the store takes `bytes` more now (its queue is bounded; a
    /// full one refuses a post at once).
    fn has_room(&self, _bytes: usize) -> bool {
        true
    }
    /// The room's snapshot at once, when the store can read it without
    /// waiting (memory, SQLite); `None` for a remote one.
    fn snapshot_now(&self, _room: &str, _recent: usize) -> Option<Result<Snapshot, StoreError>> {
        None
    }
    /// The room's snapshot: epoch, head, the latest `recent` entries.
    fn snapshot(&self, room: &str, recent: usize) -> Read<Snapshot>;
    /// Entries `from..=to` (fewer when some are no longer kept).
    fn range(&self, room: &str, from: u64, to: u64) -> Read<Vec<Msg>>;
    /// Up to `limit` entries before `before`, oldest first.
    fn before(&self, room: &str, before: u64, limit: usize) -> Read<Vec<Msg>>;
    /// Entries older than this (ms since the Unix epoch) are dropped by
    /// age retention, if it is on.
    fn expiry_cutoff(&self) -> Option<i64> {
        None
    }
    /// The most entries a room keeps (older ones are trimmed), if bounded:
    /// a room keeps no more than this at hand either.
    fn kept_per_room(&self) -> Option<u64> {
        None
    }
    /// The room closed (no members, nothing in flight): what the store
    /// holds for it in memory may go (its entries stay).
    fn retire(&self, _room: &str) {}
    /// Whether the room has a history here, without creating it (a
    /// `resume` cursor for a room that does not exist must not create it).
    fn exists(&self, _room: &str) -> Read<bool> {
        Box::pin(async { Ok(false) })
    }
    /// Bytes of entries waiting to be stored.
    fn queued_bytes(&self) -> usize {
        0
    }
}

/// A presence change as other processes see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePresence {
    /// The process it happened on.
    pub node: String,
    /// The member (`{node}:{conn}`).
    pub key: String,
    /// Joined, left or renamed.
    pub kind: PresenceKind,
    /// The (new) nickname.
    pub nick: String,
    /// The old nickname of a rename.
    pub old: Option<String>,
}

/// What the bus brings a room from elsewhere.
#[derive(Debug)]
pub enum BusEvent {
    /// An entry stored by any process (this one's too).
    Entry(Msg),
    /// A member on another process joined, left or renamed.
    Presence(RemotePresence),
    /// Somebody on another process is (not) typing.
    Typing {
        /// The process.
        node: String,
        /// Who.
        nick: String,
        /// Typing or not.
        on: bool,
    },
    /// The room's latest `seq` in the log (read now and then, so a room
    /// that missed a publication catches up).
    Head(u64),
    /// The shared store became reachable (`true`) or not.
    Health(bool),
    /// Updates may have been lost: read the snapshot again.
    Resync,
    /// A moderator on another process took a person out of the room.
    Remove(Removal),
}

/// A person taken out of a room by a moderator, on every process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The process the moderator acted on.
    pub node: String,
    /// Who: their nickname (an account's name, or a guest's).
    pub nick: String,
    /// Whether it is an account (a guest of the same name stays).
    pub signed_in: bool,
    /// The `removed` event's JSON, as the person's connections get it.
    pub removed: bytes::Bytes,
}

/// What a process tells every other about accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A sign-in session (its token's hash) ended: its sockets close.
    SignedOut(String),
    /// A frame for every connection of an account (by key).
    ToAccount(String, bytes::Bytes),
    /// Notices may have been lost (the channel was down a while): every
    /// signed-in connection's session is checked again.
    Recheck,
}

/// Where a room hears from other processes, and tells them. In one process
/// it carries nothing ([`LocalBus`]).
pub trait Bus: Send + Sync {
    /// This process's name among the others.
    fn node(&self) -> &str {
        "local"
    }
    /// Whether anything ever comes from it (a room listens only then).
    fn carries(&self) -> bool {
        false
    }
    /// Starts bringing the room's events to `to`.
    fn subscribe(&self, _room: Arc<str>, _to: mpsc::WeakSender<BusEvent>) {}
    /// Stops (the room retired).
    fn unsubscribe(&self, _room: &str) {}
    /// Whether the shared store answers (always, in one process).
    fn healthy(&self) -> bool {
        true
    }
    /// Tells the other processes about a local member.
    fn presence(
        &self,
        _room: &str,
        _conn: ConnId,
        _kind: PresenceKind,
        _nick: &str,
        _old: Option<String>,
    ) {
    }
    /// Corrects the shared member list for a member this process no longer
    /// has (found in a snapshot).
    fn forget_member(&self, _room: &str, _key: String, _nick: &str) {}
    /// Tells the other processes someone here is (not) typing.
    fn typing(&self, _room: &str, _nick: &str, _on: bool) {}
    /// The rooms open on every process, busiest first, at most `max`,
    /// when the bus knows them (`None`: only this process's are known).
    fn rooms(&self, _max: usize) -> Option<Read<Vec<shared::chat::RoomInfo>>> {
        None
    }
    /// Tells the other processes' copies of the room to take a person out.
    fn removed(&self, _room: &str, _removal: &Removal) {}
    /// Tells every other process about an account.
    fn notify(&self, _notice: &Notice) {}
    /// What the other processes tell this one about accounts (taken once,
    /// by the state that keeps the signed-in connections).
    fn notices(&self) -> Option<mpsc::UnboundedReceiver<Notice>> {
        None
    }
}

/// One process: nobody else to hear from.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalBus;

impl Bus for LocalBus {}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::chat::Change;

    #[test]
    fn one_rule_decides_every_edit_and_delete() {
        let msg = Msg::new("r".into(), "e".into(), 1, "ann".into(), "hi".into(), 1_000);
        let edit = ChangeOf {
            kind: Change::Edit,
            of: 1,
            any: false,
        };
        let delete = ChangeOf {
            kind: Change::Delete,
            ..edit
        };
        let ann = Some("a:ann");
        let check = |target: &Msg, change: &ChangeOf, by: Option<&str>, ts: i64| {
            check_change(target, ann, change, by, ts)
        };
        assert_eq!(check(&msg, &edit, ann, 2_000), Ok(()));
        assert_eq!(
            check(&msg, &edit, ann, 1_000 + EDIT_WINDOW_MS + 1),
            Err(Refusal::TooLate)
        );
        assert_eq!(
            check(&msg, &delete, ann, 1_000 + EDIT_WINDOW_MS + 1),
            Ok(()),
            "deleting one's own has no time limit"
        );
        assert_eq!(
            check(&msg, &edit, Some("a:bob"), 2_000),
            Err(Refusal::NotYours)
        );
        assert_eq!(
            check(&msg, &delete, Some("a:bob"), 2_000),
            Err(Refusal::NotYours)
        );
        let moderator = ChangeOf {
            any: true,
            ..delete
        };
        assert_eq!(check(&msg, &moderator, Some("a:bob"), 2_000), Ok(()));
        let as_moderator_edit = ChangeOf { any: true, ..edit };
        assert_eq!(
            check(&msg, &as_moderator_edit, Some("a:bob"), 2_000),
            Err(Refusal::NotYours),
            "moderators delete, they do not edit"
        );
        assert_eq!(
            check(&msg, &edit, None, 2_000),
            Err(Refusal::NotYours),
            "an unknown author owns nothing"
        );
        let gone = Msg {
            deleted: true,
            ..msg.clone()
        };
        assert_eq!(check(&gone, &edit, ann, 2_000), Err(Refusal::Deleted));
        let a_change = Msg {
            kind: Some(Change::Edit),
            of: Some(0),
            ..msg
        };
        assert_eq!(
            check(&a_change, &delete, ann, 2_000),
            Err(Refusal::NoSuchMessage)
        );
    }
}
