//! The writer thread: the only user of the write connection. It gives
//! each entry its room's next `seq` (or, for a retried `(session, cid)`,
//! its original place), commits whatever is queued in one transaction
//! (group commit), records each acknowledging commit in the witness file
//! before answering, and applies retention between groups.

mod retention;

use super::reads::{change_kind, kind_name};
use super::{
    Error, Op, Retention, StoreError,
    cids::{Cids, DEDUP_WINDOW, Known},
    now_ms, queued_bytes,
    reads::epoch_of,
    schema::Witness,
};
use crate::log::{ChangeOf, Entry, Placed, Refusal, check_change};
use rusqlite::{Connection, OptionalExtension, params};
use shared::chat::{Change, Msg, Said};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};
use tracing::error;

/// How long things are kept.
pub(super) struct Settings {
    pub retention: Retention,
    pub session_ttl: Duration,
}

/// An answer to send once the group is committed.
type Answer = (
    tokio::sync::oneshot::Sender<Result<Placed, StoreError>>,
    Placed,
);

/// Most writes taken into one transaction.
const MAX_BATCH: usize = 4_096;
/// How often rooms written since the last trim are cut to the retention
/// (a range delete on each room's key: cheap).
const TRIM_EVERY: Duration = Duration::from_secs(1);
/// How often every room is swept (message age, rooms not written lately,
/// old sessions: these scan the whole table, so not often).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The writer thread's state.
pub(super) struct Writer {
    conn: Connection,
    retention: Retention,
    session_ttl: Duration,
    /// Acknowledging commits on disk, and their record beside the database.
    commits: u64,
    witness: Witness,
    /// Bytes of appends waiting (shared with the histories that queue them).
    queued: Arc<AtomicUsize>,
    /// Tests: each commit waits this long first.
    delay: Duration,
    /// Last stored seq per room (loaded on first use).
    stored: HashMap<Arc<str>, u64>,
    /// Each room's epoch (shared with the readers).
    epochs: Arc<Mutex<HashMap<Arc<str>, String>>>,
    /// Rooms whose row (name, epoch) is in the database.
    recorded: HashSet<Arc<str>>,
    /// Recent `cid`s per room and session.
    cids: Cids,
    /// Rooms written since the last trim.
    touched: HashSet<Arc<str>>,
    last_trim: Instant,
    last_full_sweep: Option<Instant>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        settings: Settings,
        witness: Witness,
        commits: u64,
        queued: Arc<AtomicUsize>,
        cids: Cids,
        epochs: Arc<Mutex<HashMap<Arc<str>, String>>>,
    ) -> Self {
        Self {
            conn,
            retention: settings.retention,
            session_ttl: settings.session_ttl,
            commits,
            witness,
            queued,
            delay: Duration::ZERO,
            stored: HashMap::new(),
            epochs,
            recorded: HashSet::new(),
            cids,
            touched: HashSet::new(),
            last_trim: Instant::now(),
            last_full_sweep: None,
        }
    }

    pub(super) fn run(mut self, rx: mpsc::Receiver<Op>) {
        loop {
            let first = match rx.recv_timeout(TRIM_EVERY) {
                Ok(op) => op,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.maintain();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let (after, writes): (Vec<Op>, Vec<Op>) = batch
                .into_iter()
                .partition(|op| matches!(op, Op::Sweep(_) | Op::Flush(_)));
            if !writes.is_empty() {
                self.write(writes);
            }
            // Everything queued before these is written now.
            for op in after {
                match op {
                    Op::Sweep(done) => {
                        self.apply_retention();
                        let _ = done.send(());
                    }
                    Op::Flush(done) => {
                        let _ = done.send(());
                    }
                    _ => {}
                }
            }
            self.maintain();
        }
    }

    /// Last stored seq of a room (read once, then cached).
    fn stored_seq(
        conn: &Connection,
        stored: &mut HashMap<Arc<str>, u64>,
        room: &Arc<str>,
    ) -> rusqlite::Result<u64> {
        if let Some(seq) = stored.get(room) {
            return Ok(*seq);
        }
        let seq: u64 = conn
            .query_row(
                "SELECT max(seq) FROM messages WHERE room = ?1",
                [&**room],
                |r| r.get::<_, Option<u64>>(0),
            )?
            .unwrap_or(0);
        stored.insert(room.clone(), seq);
        Ok(seq)
    }

    /// Where the database has a `(session, cid)` among the room's last
    /// [`DEDUP_WINDOW`] messages (a range of its key: no index on `cid`,
    /// which would cost every insert a second tree).
    fn stored_cid(
        tx: &Connection,
        room: &str,
        last: u64,
        session: &str,
        cid: &str,
    ) -> rusqlite::Result<Option<Said>> {
        tx.prepare_cached(
            "SELECT seq, ts FROM messages WHERE room = ?1 AND seq > ?4 AND session = ?2 AND cid = ?3",
        )?
        .query_row(
            params![room, session, cid, last.saturating_sub(DEDUP_WINDOW)],
            |r| {
                Ok(Said {
                    seq: r.get(0)?,
                    ts: r.get(1)?,
                })
            },
        )
        .optional()
    }

    /// Writes one group in one transaction and answers every waiter.
    /// Whether `entry` may change the message it names (the rule of
    /// `log::check_change`, on the stored message).
    fn may_change(
        tx: &Connection,
        room: &str,
        entry: &Entry,
        change: &ChangeOf,
    ) -> rusqlite::Result<Result<(), Refusal>> {
        let target = tx
            .prepare_cached(
                "SELECT seq, nick, text, ts, kind, deleted, author FROM messages WHERE room = ?1 AND seq = ?2",
            )?
            .query_row(params![room, change.of], |r| {
                let mut msg = Msg::new(
                    room.to_owned(),
                    String::new(),
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                );
                msg.kind = r.get::<_, Option<String>>(4)?.as_deref().and_then(change_kind);
                msg.deleted = r.get(5)?;
                Ok((msg, r.get::<_, Option<String>>(6)?))
            })
            .optional()?;
        Ok(match target {
            None => Err(Refusal::NoSuchMessage),
            Some((msg, author)) => check_change(
                &msg,
                author.as_deref(),
                change,
                entry.author.as_deref(),
                entry.ts,
            ),
        })
    }

    /// Applies a change placed at `seq` to the message it names: an edit's
    /// text replaces it, a delete removes it from the database.
    fn change(
        tx: &Connection,
        room: &str,
        seq: u64,
        text: &str,
        change: &ChangeOf,
    ) -> rusqlite::Result<()> {
        match change.kind {
            Change::Edit => tx
                .prepare_cached(
                    "UPDATE messages SET text = ?3, changed = ?4 WHERE room = ?1 AND seq = ?2",
                )?
                .execute(params![room, change.of, text, seq])?,
            Change::Delete => tx
                .prepare_cached(
                    "UPDATE messages SET text = '', deleted = 1, changed = ?3 WHERE room = ?1 AND seq = ?2",
                )?
                .execute(params![room, change.of, seq])?,
        };
        Ok(())
    }

    fn write(&mut self, batch: Vec<Op>) {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        // Answers of entries this group places, sent once it is on disk;
        // retries of entries placed before are answered whatever happens.
        let mut placed: Vec<Answer> = Vec::new();
        let mut known: Vec<Answer> = Vec::new();
        // Edits and deletes the log refuses: nothing of them is written.
        let mut refused: Vec<(
            tokio::sync::oneshot::Sender<Result<Placed, StoreError>>,
            Refusal,
        )> = Vec::new();
        let mut next: HashMap<Arc<str>, u64> = HashMap::new();
        // `(room, session, cid)` placed in this group (a retry can follow
        // its original in the same group).
        let mut in_group: HashMap<(Arc<str>, String, String), Said> = HashMap::new();
        let mut rooms_recorded = Vec::new();
        // A delete is in this group: the old text is scrubbed from the
        // write-ahead log too once it is committed.
        let mut scrub = false;
        let mut retired = Vec::new();
        let mut bytes = 0;
        let commits = self.commits + 1;
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for op in batch {
                match op {
                    Op::Append { room, entry, done } => {
                        bytes += queued_bytes(&entry);
                        let last = match next.get(&room) {
                            Some(seq) => *seq,
                            None => Self::stored_seq(&tx, &mut self.stored, &room)?,
                        };
                        let epoch = epoch_of(&self.epochs, &tx, &room)?;
                        if let (Some(session), Some(cid)) = (&entry.session, &entry.cid) {
                            let key = (room.clone(), session.clone(), cid.clone());
                            let before = match in_group.get(&key) {
                                Some(said) => Some(*said),
                                None => match self.cids.find(&room, session, cid) {
                                    Known::Placed(said) => Some(said),
                                    Known::New => None,
                                    Known::Ask => Self::stored_cid(&tx, &room, last, session, cid)?,
                                },
                            };
                            if let Some(said) = before {
                                let answer = Placed {
                                    seq: said.seq,
                                    ts: said.ts,
                                    epoch,
                                    fresh: false,
                                };
                                if in_group.contains_key(&key) {
                                    placed.push((done, answer));
                                } else {
                                    known.push((done, answer));
                                }
                                continue;
                            }
                        }
                        if !self.recorded.contains(&room) {
                            tx.execute(
                                "INSERT OR IGNORE INTO rooms (name, epoch) VALUES (?1, ?2)",
                                params![&*room, &epoch],
                            )?;
                            rooms_recorded.push(room.clone());
                        }
                        if let Some(change) = &entry.change
                            && let Err(why) = Self::may_change(&tx, &room, &entry, change)?
                        {
                            refused.push((done, why));
                            continue;
                        }
                        let seq = last + 1;
                        tx.prepare_cached(
                            "INSERT INTO messages (room, seq, nick, text, ts, cid, session, kind, target, author, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        )?
                        .execute(params![
                            &*room,
                            seq,
                            entry.from,
                            entry.text,
                            entry.ts,
                            entry.cid,
                            entry.session,
                            entry.change.map(|c| kind_name(c.kind)),
                            entry.change.map(|c| c.of),
                            entry.author,
                            entry.reply,
                        ])?;
                        if let Some(change) = &entry.change {
                            Self::change(&tx, &room, seq, &entry.text, change)?;
                            scrub |= change.kind == Change::Delete;
                        }
                        next.insert(room.clone(), seq);
                        if let (Some(session), Some(cid)) = (entry.session, entry.cid) {
                            in_group.insert((room, session, cid), Said { seq, ts: entry.ts });
                        }
                        placed.push((
                            done,
                            Placed {
                                seq,
                                ts: entry.ts,
                                epoch,
                                fresh: true,
                            },
                        ));
                    }
                    Op::Session { token, session } => {
                        tx.prepare_cached(
                            "INSERT INTO sessions (token, nick, rooms, seen) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT(token) DO UPDATE SET nick = ?2, rooms = ?3, seen = ?4",
                        )?
                        .execute(params![token, session.nick, session.rooms.join(","), now_ms()])?;
                    }
                    Op::FailWrites(fail) => {
                        tx.pragma_update(None, "query_only", fail)?;
                    }
                    Op::Delay(delay) => self.delay = delay,
                    Op::Sweep(done) | Op::Flush(done) => {
                        // Taken apart in `run`; answer anyway.
                        let _ = done.send(());
                    }
                    Op::Retire(room) => retired.push(room),
                }
            }
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'commits'")?
                .execute([commits])?;
            tx.commit()
        })();
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        for (done, answer) in known {
            let _ = done.send(Ok(answer));
        }
        for (done, why) in refused {
            let _ = done.send(Err(StoreError::Refused(why)));
        }
        let result = result.map_err(StoreError::from).and_then(|()| {
            // On disk: record it before anybody is told (see `schema`).
            self.commits = commits;
            self.witness
                .record(commits)
                .map_err(|e| Error::Witness(e).into())
        });
        // Rooms that closed: their memory goes once this group is settled
        // (a room's own writes come before its retirement in the queue).
        let forget = move |writer: &mut Self| {
            for room in retired {
                writer.forget(&room);
            }
        };
        match result {
            Ok(()) => {
                for (room, seq) in next {
                    self.touched.insert(room.clone());
                    self.stored.insert(room, seq);
                }
                self.recorded.extend(rooms_recorded);
                for ((room, session, cid), said) in in_group {
                    self.cids.remember(&room, &session, &cid, said);
                }
                for (done, answer) in placed {
                    let _ = done.send(Ok(answer));
                }
                if scrub {
                    self.scrub();
                }
            }
            Err(e) => {
                error!(error = %e, "history write failed; messages refused until it works again");
                let _ = self.conn.execute_batch("ROLLBACK");
                for (done, _) in placed {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
        forget(self);
    }

    /// Copies the write-ahead log into the database and empties it, so
    /// that a deleted message's text (overwritten in the database by
    /// `secure_delete`) is not left in an old frame of the log either.
    /// Readers in the way make it a no-op; the next delete tries again.
    fn scrub(&mut self) {
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::debug!(error = %e, "could not empty the write-ahead log after a delete");
        }
    }

    /// Lets go of what is held for a closed room: its last `seq`, its
    /// recorded row, its recent `cid`s (a retry after it opens again asks
    /// the database), its epoch (read again from the database).
    fn forget(&mut self, room: &Arc<str>) {
        self.stored.remove(room);
        self.touched.remove(room);
        self.recorded.remove(room);
        self.cids.forget(room);
        // A room with a row keeps its epoch there; one without any message
        // keeps it here (a new one would not match what its room was told).
        let has_row = self
            .conn
            .query_row("SELECT 1 FROM rooms WHERE name = ?1", [&**room], |_| Ok(()))
            .optional()
            .is_ok_and(|row| row.is_some());
        if has_row {
            // Single map operations: a poisoned lock is consistent.
            self.epochs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(room);
        }
    }
}
