//! Durable history in an embedded SQLite database (WAL, `synchronous=FULL`).
//!
//! One writer thread owns the write connection and commits in groups: it
//! takes every write queued while the previous commit was syncing, so many
//! messages share one transaction and one fsync and durability costs little
//! throughput. The writer gives each entry its room's next `seq` (it knows
//! every room's last one), answers a retried `(session, cid)` with its
//! original place, and answers only after the transaction is on disk: a
//! failed commit places nothing, so there is never a gap to repair. Reads
//! use their own connection (WAL lets them run beside the writer).
//!
//! What waits for the writer is bounded in bytes (`--store-queue-bytes`):
//! when a slow disk lets it fill, a post is refused at once (`say` answers
//! `unavailable`) instead of queueing in memory. Session tokens are stored
//! only as hashes, and the files are readable by their owner only (see
//! `schema`, which also detects a database that lost acknowledged writes).

mod cids;
mod schema;
mod writer;

pub use cids::DEDUP_WINDOW;

use crate::{
    history::{HistoryStore, SavedSession},
    ids::new_epoch,
    log::{Entry, Log, Placed, Read, Snapshot, StoreError},
};
use rusqlite::{Connection, OptionalExtension, params};
use shared::chat::Msg;
use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// How long messages are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Most messages kept per room.
    pub max_messages: u64,
    /// Oldest message kept, if limited.
    pub max_age: Option<Duration>,
}

/// Everything [`SqliteStore::open_with`] takes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long messages are kept.
    pub retention: Retention,
    /// A session not seen for this long is forgotten (and cannot resume).
    pub session_ttl: Duration,
    /// Bytes of messages waiting for the writer at most.
    pub queue_bytes: usize,
}

impl Options {
    /// `retention`, sessions kept an hour, a 16 MiB queue.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            session_ttl: Duration::from_secs(3_600),
            queue_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a queued entry counts for against the queue bound.
fn queued_bytes(entry: &Entry) -> usize {
    entry.text.len() + entry.from.len() + entry.cid.as_ref().map_or(0, String::len) + 64
}

enum Op {
    Append {
        room: Arc<str>,
        entry: Entry,
        done: oneshot::Sender<Result<Placed, StoreError>>,
    },
    Session {
        token: String,
        session: SavedSession,
    },
    /// Tests: make every later write fail (or work again).
    FailWrites(bool),
    /// Tests: every commit waits this long first (a slow disk).
    Delay(Duration),
    /// Apply retention to every room now (it also runs by itself, see
    /// `writer::TRIM_EVERY` and `writer::FULL_SWEEP_EVERY`).
    Sweep(oneshot::Sender<()>),
    /// Answered once every op queued before it is written.
    Flush(oneshot::Sender<()>),
    /// A room closed: what the writer holds for it in memory goes (it is
    /// read again from the database when the room opens again).
    Retire(Arc<str>),
}

struct Shared {
    read: Mutex<Connection>,
    writer: Mutex<mpsc::Sender<Op>>,
    /// Sessions brought back from an earlier run: what they said then is
    /// only in the database (the writer's `cid` memory asks there).
    restored: Arc<Mutex<HashSet<String>>>,
    /// Each room's epoch, once read or made (the writer records a new
    /// room's with its first message).
    epochs: Arc<Mutex<HashMap<Arc<str>, String>>>,
    /// Bytes of appends handed to the writer and not yet answered.
    queued: Arc<AtomicUsize>,
    queue_limit: usize,
    session_ttl: Duration,
    max_age: Option<Duration>,
    max_messages: u64,
}

impl Shared {
    fn send(&self, op: Op) -> bool {
        self.writer
            .lock()
            .map(|w| w.send(op).is_ok())
            .unwrap_or(false)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self
            .read
            .lock()
            .map_err(|_| StoreError("read lock poisoned".into()))?;
        f(&conn).map_err(|e| StoreError(e.to_string()))
    }
}

/// The SQLite history store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/chat.db` with default options.
    pub fn open(dir: &Path, retention: Retention) -> Result<Self, StoreError> {
        Self::open_with(dir, Options::new(retention))
    }

    /// Opens (creating if needed) `dir/chat.db`. A directory that cannot be
    /// created or a file that is not a usable database is an error.
    pub fn open_with(dir: &Path, options: Options) -> Result<Self, StoreError> {
        let path = dir.join("chat.db");
        schema::private_files(dir, &path)?;
        let write = schema::connect(&path)
            .map_err(|e| StoreError(format!("{}: {}", path.display(), e.0)))?;
        let check: String = write
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        if check != "ok" {
            return Err(StoreError(format!(
                "{} is damaged: {check}. Restore it from a backup, or move it away to start with an empty history",
                path.display()
            )));
        }
        schema::migrate(&write, &path)?;
        let (witness, commits) = schema::Witness::open(&write, &path)?;
        let read = schema::connect(&path)?;
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let restored: Arc<Mutex<HashSet<String>>> = Arc::default();
        let epochs: Arc<Mutex<HashMap<Arc<str>, String>>> = Arc::default();
        let writer = writer::Writer::new(
            write,
            writer::Settings {
                retention: options.retention,
                session_ttl: options.session_ttl,
            },
            witness,
            commits,
            queued.clone(),
            cids::Cids::new(restored.clone()),
            epochs.clone(),
        );
        thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(err)?;
        info!(path = %path.display(), "history store open");
        Ok(Self {
            shared: Arc::new(Shared {
                read: Mutex::new(read),
                writer: Mutex::new(tx),
                restored,
                epochs,
                queued,
                queue_limit: options.queue_bytes,
                session_ttl: options.session_ttl,
                max_age: options.retention.max_age,
                max_messages: options.retention.max_messages.max(1),
            }),
        })
    }

    /// Applies retention to every room now and waits for it (it also runs
    /// by itself: rooms written lately every second, all rooms every minute).
    pub async fn sweep(&self) {
        let (done, swept) = oneshot::channel();
        if self.shared.send(Op::Sweep(done)) {
            let _ = swept.await;
        }
    }

    /// Fault injection for tests: every write fails until turned off again
    /// (the writer sets `PRAGMA query_only`, so SQLite itself refuses).
    pub fn fail_writes(&self, fail: bool) {
        self.shared.send(Op::FailWrites(fail));
    }

    /// Fault injection for tests: every commit first waits `delay` (a
    /// slow disk); `Duration::ZERO` turns it off.
    pub fn delay_writes(&self, delay: Duration) {
        self.shared.send(Op::Delay(delay));
    }
}

impl HistoryStore for SqliteStore {
    fn flushed(&self) -> Option<oneshot::Receiver<()>> {
        let (done, flushed) = oneshot::channel();
        self.shared.send(Op::Flush(done)).then_some(flushed)
    }

    fn load_session(&self, token: &str) -> Option<SavedSession> {
        let since = now_ms() - ms(self.shared.session_ttl);
        self.shared
            .read(|c| {
                c.query_row(
                    "SELECT nick, rooms FROM sessions WHERE token = ?1 AND seen >= ?2",
                    params![token, since],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
            })
            .ok()
            .flatten()
            .map(|(nick, rooms)| SavedSession {
                nick,
                rooms: rooms
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(Into::into)
                    .collect(),
            })
            .inspect(|_| {
                if let Ok(mut restored) = self.shared.restored.lock() {
                    restored.insert(token.to_owned());
                }
            })
    }

    fn save_session(&self, token: &str, session: &SavedSession) {
        self.shared.send(Op::Session {
            token: token.to_owned(),
            session: session.clone(),
        });
    }

    fn held_nicks(&self) -> Vec<(String, String, Duration)> {
        let now = now_ms();
        let ttl = ms(self.shared.session_ttl);
        self.shared
            .read(|c| {
                let mut stmt =
                    c.prepare("SELECT token, nick, seen FROM sessions WHERE seen >= ?1")?;
                let rows = stmt.query_map([now - ttl], |r| {
                    let seen: i64 = r.get(2)?;
                    let left = (seen + ttl - now).max(0);
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        Duration::from_millis(u64::try_from(left).unwrap_or(0)),
                    ))
                })?;
                rows.collect()
            })
            .unwrap_or_else(|e| {
                warn!(error = %e, "cannot read the stored sessions' nicknames");
                Vec::new()
            })
    }
}

fn row_to_msg(room: &str, epoch: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Msg> {
    Ok(Msg {
        room: room.to_owned(),
        epoch: epoch.to_owned(),
        seq: r.get(0)?,
        from: r.get(1)?,
        text: r.get(2)?,
        ts: r.get(3)?,
        cid: r.get(4)?,
    })
}

/// A room's epoch: the one recorded with its messages, or one made now
/// for a new room (and kept, so the writer records the same).
fn epoch_of(
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

impl Shared {
    /// The room's entries `from..=to`, oldest first.
    fn range(&self, room: &str, from: u64, to: u64) -> Result<Vec<Msg>, StoreError> {
        let to = to.min(i64::MAX as u64);
        let conn = self
            .read
            .lock()
            .map_err(|_| StoreError("read lock poisoned".into()))?;
        let epoch = epoch_of(&self.epochs, &conn, room).map_err(err)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, nick, text, ts, cid FROM messages WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![room, from, to], |r| row_to_msg(room, &epoch, r))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Up to `limit` entries before `before`, oldest first.
    fn before(&self, room: &str, before: u64, limit: usize) -> Result<Vec<Msg>, StoreError> {
        let before = before.min(i64::MAX as u64);
        let conn = self
            .read
            .lock()
            .map_err(|_| StoreError("read lock poisoned".into()))?;
        let epoch = epoch_of(&self.epochs, &conn, room).map_err(err)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, nick, text, ts, cid FROM messages WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![room, before, limit as u64], |r| {
                row_to_msg(room, &epoch, r)
            })
            .map_err(err)?;
        let mut msgs: Vec<Msg> = rows.collect::<Result<_, _>>().map_err(err)?;
        msgs.reverse();
        Ok(msgs)
    }

    /// Epoch, last `seq` and the latest `recent` entries. Retention never
    /// deletes a room's newest message, so its `seq` continues.
    fn snapshot(&self, room: &str, recent: usize) -> Result<Snapshot, StoreError> {
        let head: Option<u64> = {
            let conn = self
                .read
                .lock()
                .map_err(|_| StoreError("read lock poisoned".into()))?;
            conn.query_row(
                "SELECT max(seq) FROM messages WHERE room = ?1",
                [room],
                |r| r.get(0),
            )
            .map_err(err)?
        };
        let recent = self.before(room, u64::MAX, recent)?;
        let conn = self
            .read
            .lock()
            .map_err(|_| StoreError("read lock poisoned".into()))?;
        Ok(Snapshot {
            epoch: epoch_of(&self.epochs, &conn, room).map_err(err)?,
            head: head.unwrap_or(0),
            recent,
            members: HashMap::new(),
        })
    }
}

/// Runs a read on a blocking thread.
fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    read: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
) -> Read<T> {
    let shared = shared.clone();
    Box::pin(async move {
        tokio::task::spawn_blocking(move || read(&shared))
            .await
            .map_err(|e| StoreError(format!("read task: {e}")))?
    })
}

impl Log for SqliteStore {
    fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    fn exists(&self, room: &str) -> Read<bool> {
        let found = self
            .shared
            .read(|c| {
                c.query_row("SELECT 1 FROM rooms WHERE name = ?1", [room], |_| Ok(()))
                    .optional()
            })
            .map(|row| row.is_some());
        Box::pin(async move { found })
    }

    fn append(&self, room: &str, entry: Entry) -> oneshot::Receiver<Result<Placed, StoreError>> {
        let (done, placed) = oneshot::channel();
        self.shared
            .queued
            .fetch_add(queued_bytes(&entry), Ordering::AcqRel);
        let op = Op::Append {
            room: room.into(),
            entry,
            done,
        };
        let sent = match self.shared.writer.lock() {
            Ok(writer) => writer.send(op).map_err(|mpsc::SendError(op)| op),
            Err(_) => Err(op),
        };
        if let Err(Op::Append { entry, done, .. }) = sent {
            self.shared
                .queued
                .fetch_sub(queued_bytes(&entry), Ordering::AcqRel);
            let _ = done.send(Err(StoreError("history writer stopped".into())));
        }
        placed
    }

    fn has_room(&self, bytes: usize) -> bool {
        self.shared.queued.load(Ordering::Acquire) + bytes + 64 <= self.shared.queue_limit
    }

    fn snapshot_now(&self, room: &str, recent: usize) -> Option<Result<Snapshot, StoreError>> {
        Some(self.shared.snapshot(room, recent))
    }

    fn snapshot(&self, room: &str, recent: usize) -> Read<Snapshot> {
        let room = room.to_owned();
        blocking(&self.shared, move |s| s.snapshot(&room, recent))
    }

    fn range(&self, room: &str, from: u64, to: u64) -> Read<Vec<Msg>> {
        let room = room.to_owned();
        blocking(&self.shared, move |s| s.range(&room, from, to))
    }

    fn before(&self, room: &str, before: u64, limit: usize) -> Read<Vec<Msg>> {
        let room = room.to_owned();
        blocking(&self.shared, move |s| s.before(&room, before, limit))
    }

    fn expiry_cutoff(&self) -> Option<i64> {
        self.shared.max_age.map(|age| now_ms() - ms(age))
    }

    fn kept_per_room(&self) -> Option<u64> {
        Some(self.shared.max_messages)
    }

    fn retire(&self, room: &str) {
        self.shared.send(Op::Retire(room.into()));
    }
}
