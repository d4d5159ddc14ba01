//! Durable history in an embedded SQLite database (WAL, `synchronous=FULL`).
//!
//! One writer thread owns the write connection and commits in groups: it
//! takes every write queued while the previous commit was syncing, so many
//! messages share one transaction and one fsync and durability costs little
//! throughput. A message's commit resolves only after its transaction is on
//! disk. The writer checks that each room's `seq` follows the last one it
//! stored, so a failed commit can never leave a gap: later messages of that
//! room fail too until the room actor rewinds. Reads use their own
//! connection (WAL lets them run beside the writer).
//!
//! What waits for the writer is bounded in bytes (`--store-queue-bytes`):
//! when a slow disk lets it fill, a post is refused at once (`say` answers
//! `unavailable`) instead of queueing in memory. Session tokens are stored
//! only as hashes, and the files are readable by their owner only (see
//! `schema`, which also detects a database that lost acknowledged writes).

mod schema;
mod writer;

use crate::history::{Commit, History, HistoryStore, SavedSession, StoreError, new_epoch};
use rusqlite::{Connection, OptionalExtension, params};
use shared::chat::{Msg, Said};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::{Path, PathBuf},
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

/// What a queued message counts for against the queue bound.
fn queued_bytes(msg: &Msg) -> usize {
    msg.text.len() + msg.from.len() + msg.cid.as_ref().map_or(0, String::len) + 64
}

enum Op {
    Append {
        room: Arc<str>,
        msg: Msg,
        session: Option<String>,
        done: oneshot::Sender<Result<(), StoreError>>,
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
}

struct Shared {
    read: Mutex<Connection>,
    writer: Mutex<mpsc::Sender<Op>>,
    /// Sessions brought back from an earlier run: what they said then is
    /// only in the database.
    restored: Mutex<HashSet<String>>,
    /// Bytes of appends handed to the writer and not yet answered.
    queued: Arc<AtomicUsize>,
    queue_limit: usize,
    session_ttl: Duration,
}

/// `cid`s remembered per session and room without asking the database
/// (a retry comes soon after the original: this covers it).
const RECENT_CIDS: usize = 4_096;
/// A retried `cid` is found among this many of the room's newest messages
/// (memory covers recent retries; this is for those after a restart).
pub const DEDUP_WINDOW: u64 = 10_000;
/// Sessions remembered per room; the one that posted least lately goes.
const RECENT_SESSIONS: usize = 1_024;

/// One session's recent `cid`s in one room. A session the room does not
/// remember (never posted in this run, came from an earlier one, or was
/// forgotten) and one that sent more than [`RECENT_CIDS`] may have a `cid`
/// only in the database, so a miss asks there.
#[derive(Default)]
struct SessionCids {
    said: HashMap<Box<str>, Said>,
    order: VecDeque<Box<str>>,
    /// Some were forgotten: a miss must ask the database.
    evicted: bool,
    /// When it last posted (the room's seq).
    last: u64,
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
    path: PathBuf,
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
        let writer = writer::Writer::new(
            write,
            options.retention,
            options.session_ttl,
            witness,
            commits,
            queued.clone(),
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
                restored: Mutex::new(HashSet::new()),
                queued,
                queue_limit: options.queue_bytes,
                session_ttl: options.session_ttl,
            }),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
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

    fn open(&self, room: &str) -> Result<Box<dyn History>, StoreError> {
        let epoch: Option<String> = self.shared.read(|c| {
            c.query_row("SELECT epoch FROM rooms WHERE name = ?1", [room], |r| {
                r.get(0)
            })
            .optional()
        })?;
        // Retention never deletes a room's newest message, so this is the
        // room's last seq even after a sweep.
        let last_seq: Option<u64> = self.shared.read(|c| {
            c.query_row(
                "SELECT max(seq) FROM messages WHERE room = ?1",
                [room],
                |r| r.get(0),
            )
        })?;
        // The rooms row is written with the room's first message.
        Ok(Box::new(SqliteHistory {
            room: room.into(),
            epoch: epoch.unwrap_or_else(new_epoch),
            last_seq: last_seq.unwrap_or(0),
            recent: HashMap::new(),
            forgotten: HashSet::new(),
            shared: self.shared.clone(),
        }))
    }

    fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    fn exists(&self, room: &str) -> bool {
        self.shared
            .read(|c| {
                c.query_row("SELECT 1 FROM rooms WHERE name = ?1", [room], |_| Ok(()))
                    .optional()
            })
            .ok()
            .flatten()
            .is_some()
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

struct SqliteHistory {
    room: Arc<str>,
    epoch: String,
    last_seq: u64,
    /// Per session, the `cid`s of this process's recent messages.
    recent: HashMap<Box<str>, SessionCids>,
    /// Sessions dropped from `recent`: if they post again, what they said
    /// before may be in the database only.
    forgotten: HashSet<Box<str>>,
    shared: Arc<Shared>,
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

impl SqliteHistory {
    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Msg>, StoreError> {
        self.shared.read(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params, |r| row_to_msg(&self.room, &self.epoch, r))?;
            rows.collect()
        })
    }
}

impl History for SqliteHistory {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn has_room(&self, bytes: usize) -> bool {
        self.shared.queued.load(Ordering::Acquire) + bytes + 64 <= self.shared.queue_limit
    }

    fn append(&mut self, msg: Msg, session: Option<&str>) -> Commit {
        let (done, commit) = oneshot::channel();
        self.last_seq = msg.seq;
        self.shared
            .queued
            .fetch_add(queued_bytes(&msg), Ordering::AcqRel);
        if let (Some(session), Some(cid)) = (session, &msg.cid) {
            if self.recent.len() >= RECENT_SESSIONS + RECENT_SESSIONS / 8
                && !self.recent.contains_key(session)
            {
                // Forget the least recent eighth in one go.
                let mut lasts: Vec<u64> = self.recent.values().map(|c| c.last).collect();
                let cut = RECENT_SESSIONS / 8;
                let (_, nth, _) = lasts.select_nth_unstable(cut);
                let cutoff = *nth;
                let forgotten = &mut self.forgotten;
                self.recent.retain(|session, c| {
                    let keep = c.last > cutoff;
                    if !keep {
                        forgotten.insert(session.clone());
                    }
                    keep
                });
            }
            let forgotten = &self.forgotten;
            let shared = &self.shared;
            let cids = self
                .recent
                .entry(session.into())
                .or_insert_with_key(|s| SessionCids {
                    // What it said before this run, or before it was
                    // forgotten, is only in the database.
                    evicted: forgotten.contains(s)
                        || shared.restored.lock().map_or(true, |r| r.contains(&**s)),
                    ..SessionCids::default()
                });
            cids.last = msg.seq;
            if cids.order.len() == RECENT_CIDS
                && let Some(old) = cids.order.pop_front()
            {
                cids.said.remove(&old);
                cids.evicted = true;
            }
            let cid: Box<str> = cid.as_str().into();
            cids.said.insert(
                cid.clone(),
                Said {
                    seq: msg.seq,
                    ts: msg.ts,
                },
            );
            cids.order.push_back(cid);
        }
        let op = Op::Append {
            room: self.room.clone(),
            msg,
            session: session.map(Into::into),
            done,
        };
        if !self.shared.send(op) {
            return crate::history::committed(Err(StoreError("history writer stopped".into())));
        }
        commit
    }

    fn rewind(&mut self, seq: u64) {
        self.last_seq = seq;
        for cids in self.recent.values_mut() {
            cids.said.retain(|_, said| said.seq <= seq);
            let said = &cids.said;
            cids.order.retain(|k| said.contains_key(k));
        }
    }

    fn find_cid(&self, session: &str, cid: &str) -> Option<Said> {
        let cids = self.recent.get(session);
        if let Some(said) = cids.and_then(|c| c.said.get(cid)) {
            return Some(*said);
        }
        // A remembered session that never forgot a cid: it is not stored.
        if cids.is_some_and(|c| !c.evicted) {
            return None;
        }
        // Among the room's last DEDUP_WINDOW messages (a range of its key:
        // no index on `cid`, which would cost every insert a second tree).
        let from = self.last_seq.saturating_sub(DEDUP_WINDOW);
        let found = self.query(
            "SELECT seq, nick, text, ts, cid FROM messages WHERE room = ?1 AND seq > ?4 AND session = ?2 AND cid = ?3",
            params![&*self.room, session, cid, from],
        );
        match found {
            Ok(mut rows) => rows.pop().map(|m| Said {
                seq: m.seq,
                ts: m.ts,
            }),
            Err(e) => {
                warn!(room = %self.room, error = %e, "cid lookup failed");
                None
            }
        }
    }

    fn since(&self, seq: u64, max: usize, budget: usize) -> Option<Vec<Msg>> {
        if seq > self.last_seq || self.last_seq - seq > max as u64 {
            return None;
        }
        let oldest: Option<u64> = self
            .shared
            .read(|c| {
                c.query_row(
                    "SELECT min(seq) FROM messages WHERE room = ?1",
                    [&*self.room],
                    |r| r.get(0),
                )
            })
            .ok()?;
        // Everything after `seq` must still be kept (or nothing is missed).
        let kept_from = oldest.unwrap_or(self.last_seq + 1);
        if seq.saturating_add(1) < kept_from {
            return None;
        }
        // Read row by row and give up past the bounds: the whole gap is
        // never built in memory.
        self.shared
            .read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT seq, nick, text, ts, cid FROM messages WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                let mut rows = stmt.query(params![&*self.room, seq, max as u64 + 1])?;
                let mut out = Vec::new();
                let mut used = 0;
                while let Some(row) = rows.next()? {
                    let m = row_to_msg(&self.room, &self.epoch, row)?;
                    used += crate::limits::msg_bytes(&m);
                    if used > budget || out.len() >= max {
                        return Ok(None);
                    }
                    out.push(m);
                }
                Ok(Some(out))
            })
            .ok()
            .flatten()
    }

    fn before(&self, before: u64, limit: usize) -> Vec<Msg> {
        let before = before.min(i64::MAX as u64);
        let mut rows = self
            .query(
                "SELECT seq, nick, text, ts, cid FROM messages WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                params![&*self.room, before, limit as u64],
            )
            .unwrap_or_else(|e| {
                warn!(room = %self.room, error = %e, "history read failed");
                Vec::new()
            });
        rows.reverse();
        rows
    }
}
