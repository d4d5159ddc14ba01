//! Reads, on their own connection beside the writer (WAL lets them run
//! at once): a room's entries in a range, before a point, its snapshot;
//! each room's epoch, remembered once read.

use super::{Error, Shared};
use crate::{
    ids::new_epoch,
    log::{Read, Snapshot, StoreError},
};
use rusqlite::{Connection, OptionalExtension, params};
use shared::chat::{Change, Msg};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

impl Shared {
    /// The room's entries `from..=to`, oldest first.
    pub(super) fn range(&self, room: &str, from: u64, to: u64) -> Result<Vec<Msg>, StoreError> {
        let to = to.min(i64::MAX as u64);
        let conn = self.read.lock().map_err(|_| Error::Poisoned)?;
        let epoch = epoch_of(&self.epochs, &conn, room)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, nick, text, ts, cid, kind, target, changed, deleted, reply FROM messages WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
            )
            ?;
        let rows = stmt.query_map(params![room, from, to], |r| row_to_msg(room, &epoch, r))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` entries before `before`, oldest first.
    pub(super) fn before(
        &self,
        room: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Msg>, StoreError> {
        let before = before.min(i64::MAX as u64);
        let conn = self.read.lock().map_err(|_| Error::Poisoned)?;
        let epoch = epoch_of(&self.epochs, &conn, room)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, nick, text, ts, cid, kind, target, changed, deleted, reply FROM messages WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )
            ?;
        let rows = stmt.query_map(params![room, before, limit as u64], |r| {
            row_to_msg(room, &epoch, r)
        })?;
        let mut msgs: Vec<Msg> = rows.collect::<Result<_, _>>()?;
        msgs.reverse();
        Ok(msgs)
    }

    /// Epoch, last `seq` and the latest `recent` entries. Retention never
    /// deletes a room's newest message, so its `seq` continues.
    pub(super) fn snapshot(&self, room: &str, recent: usize) -> Result<Snapshot, StoreError> {
        let head: Option<u64> = {
            let conn = self.read.lock().map_err(|_| Error::Poisoned)?;
            conn.query_row(
                "SELECT max(seq) FROM messages WHERE room = ?1",
                [room],
                |r| r.get(0),
            )?
        };
        let recent = self.before(room, u64::MAX, recent)?;
        let conn = self.read.lock().map_err(|_| Error::Poisoned)?;
        Ok(Snapshot {
            epoch: epoch_of(&self.epochs, &conn, room)?,
            head: head.unwrap_or(0),
            recent,
            members: HashMap::new(),
        })
    }
}

/// Runs a read on a blocking thread.
pub(super) fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    read: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
) -> Read<T> {
    let shared = shared.clone();
    Box::pin(async move {
        tokio::task::spawn_blocking(move || read(&shared))
            .await
            .map_err(Error::ReadTask)?
    })
}

fn row_to_msg(room: &str, epoch: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Msg> {
    let mut msg = Msg::new(
        room.to_owned(),
        epoch.to_owned(),
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
    );
    msg.cid = r.get(4)?;
    msg.kind = r
        .get::<_, Option<String>>(5)?
        .as_deref()
        .and_then(change_kind);
    msg.of = r.get(6)?;
    msg.changed = r.get(7)?;
    msg.deleted = r.get(8)?;
    msg.reply = r.get(9)?;
    Ok(msg)
}

/// A change's kind as stored.
pub(super) fn change_kind(stored: &str) -> Option<Change> {
    match stored {
        "edit" => Some(Change::Edit),
        "delete" => Some(Change::Delete),
        _ => None,
    }
}

/// How a change's kind is stored.
pub(super) fn kind_name(kind: Change) -> &'static str {
    match kind {
        Change::Edit => "edit",
        Change::Delete => "delete",
    }
}

/// A room's epoch: the one recorded with its messages, or one made now
/// for a new room (and kept, so the writer records the same).
pub(super) fn epoch_of(
    epochs: &Mutex<HashMap<Arc<str>, String>>,
    conn: &Connection,
    room: &str,
) -> rusqlite::Result<String> {
    // Single map operations: a poisoned lock is consistent.
    let mut epochs = epochs.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(epoch) = epochs.get(room) {
        return Ok(epoch.clone());
    }
    let stored: Option<String> = conn
        .query_row("SELECT epoch FROM rooms WHERE name = ?1", [room], |r| {
            r.get(0)
        })
        .optional()?;
    let epoch = stored.unwrap_or_else(new_epoch);
    epochs.insert(room.into(), epoch.clone());
    Ok(epoch)
}
