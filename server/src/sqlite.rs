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

use crate::history::{Commit, History, HistoryStore, SavedSession, StoreError, new_epoch};
use rusqlite::{Connection, OptionalExtension, params};
use shared::chat::{Msg, Said};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// How long messages are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Most messages kept per room.
    pub max_messages: u64,
    /// Oldest message kept, if limited.
    pub max_age: Option<Duration>,
}

/// Most writes taken into one transaction.
const MAX_BATCH: usize = 4_096;
/// How often rooms written since the last trim are cut to the retention
/// (a range delete on each room's key: cheap).
const TRIM_EVERY: Duration = Duration::from_secs(1);
/// How often every room is swept (message age, rooms not written lately,
/// old sessions: these scan the whole table, so not often).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Sessions nobody resumed for this long are forgotten.
const SESSION_KEEP: Duration = Duration::from_secs(30 * 86_400);

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
    /// Apply retention to every room now (it also runs by itself, see
    /// [`TRIM_EVERY`] and [`FULL_SWEEP_EVERY`]).
    Sweep(oneshot::Sender<()>),
}

struct Shared {
    read: Mutex<Connection>,
    writer: Mutex<mpsc::Sender<Op>>,
    /// Sessions brought back from an earlier run: what they said then is
    /// only in the database.
    restored: Mutex<HashSet<String>>,
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

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    // journal_mode answers with a row; read it.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError(format!(
            "cannot use write-ahead logging (journal mode {mode})"
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=8192;",
    )
        .map_err(err)?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rooms (
    name  TEXT PRIMARY KEY,
    epoch TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    room    TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    nick    TEXT NOT NULL,
    text    TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    cid     TEXT,
    session TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_seq ON messages (room, seq);
DROP INDEX IF EXISTS messages_cid;
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    nick  TEXT NOT NULL,
    rooms TEXT NOT NULL,
    seen  INTEGER NOT NULL
);
";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/chat.db`. A directory that cannot be
    /// created or a file that is not a usable database is an error.
    pub fn open(dir: &Path, retention: Retention) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("chat.db");
        let write =
            connect(&path).map_err(|e| StoreError(format!("{}: {}", path.display(), e.0)))?;
        write
            .execute_batch(SCHEMA)
            .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        let check: String = write
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        if check != "ok" {
            return Err(StoreError(format!(
                "{} is damaged: {check}",
                path.display()
            )));
        }
        let read = connect(&path)?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || Writer::new(write, retention).run(rx))
            .map_err(err)?;
        info!(path = %path.display(), "history store open");
        Ok(Self {
            shared: Arc::new(Shared {
                read: Mutex::new(read),
                writer: Mutex::new(tx),
                restored: Mutex::new(HashSet::new()),
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
}

impl HistoryStore for SqliteStore {
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

    fn load_session(&self, token: &str) -> Option<SavedSession> {
        self.shared
            .read(|c| {
                c.query_row(
                    "SELECT nick, rooms FROM sessions WHERE token = ?1",
                    [token],
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

    fn append(&mut self, msg: Msg, session: Option<&str>) -> Commit {
        let (done, commit) = oneshot::channel();
        self.last_seq = msg.seq;
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

    fn since(&self, seq: u64) -> Option<Vec<Msg>> {
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
        self.query(
            "SELECT seq, nick, text, ts, cid FROM messages WHERE room = ?1 AND seq > ?2 ORDER BY seq",
            params![&*self.room, seq],
        )
        .ok()
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

/// The writer thread's state.
struct Writer {
    conn: Connection,
    retention: Retention,
    /// Last stored seq per room (loaded on first use).
    stored: HashMap<Arc<str>, u64>,
    epochs: HashMap<Arc<str>, String>,
    /// Rooms written since the last trim.
    touched: HashSet<Arc<str>>,
    last_trim: Instant,
    last_full_sweep: Option<Instant>,
}

impl Writer {
    fn new(conn: Connection, retention: Retention) -> Self {
        Self {
            conn,
            retention,
            stored: HashMap::new(),
            epochs: HashMap::new(),
            touched: HashSet::new(),
            last_trim: Instant::now(),
            last_full_sweep: None,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Op>) {
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
            let (sweeps, writes): (Vec<Op>, Vec<Op>) =
                batch.into_iter().partition(|op| matches!(op, Op::Sweep(_)));
            if !writes.is_empty() {
                self.write(writes);
            }
            for op in sweeps {
                if let Op::Sweep(done) = op {
                    self.apply_retention();
                    let _ = done.send(());
                }
            }
            self.maintain();
        }
    }

    /// Runs the retention that is due: a full sweep first thing and then
    /// every [`FULL_SWEEP_EVERY`], and in between a trim of the rooms
    /// written lately every [`TRIM_EVERY`].
    fn maintain(&mut self) {
        if self
            .last_full_sweep
            .is_none_or(|at| at.elapsed() >= FULL_SWEEP_EVERY)
        {
            self.apply_retention();
        } else if self.last_trim.elapsed() >= TRIM_EVERY && !self.touched.is_empty() {
            self.trim_touched();
        }
    }

    /// Cuts each room written since the last trim to the newest
    /// `max_messages`, in one transaction.
    fn trim_touched(&mut self) {
        self.last_trim = Instant::now();
        let keep = self.retention.max_messages.max(1);
        let rooms: Vec<(Arc<str>, u64)> = self
            .touched
            .drain()
            .filter_map(|room| {
                let last = *self.stored.get(&room)?;
                (last > keep).then(|| (room, last - keep))
            })
            .collect();
        if rooms.is_empty() {
            return;
        }
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for (room, upto) in &rooms {
                tx.prepare_cached("DELETE FROM messages WHERE room = ?1 AND seq <= ?2")?
                    .execute(params![&**room, upto])?;
            }
            tx.commit()
        })();
        if let Err(e) = result {
            let _ = self.conn.execute_batch("ROLLBACK");
            warn!(error = %e, "retention trim failed");
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

    /// Writes one group in one transaction and answers every waiter.
    fn write(&mut self, batch: Vec<Op>) {
        let mut waiters = Vec::new();
        let mut next: HashMap<Arc<str>, u64> = HashMap::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for op in batch {
                match op {
                    Op::Append {
                        room,
                        msg,
                        session,
                        done,
                    } => {
                        let expected = match next.get(&room) {
                            Some(seq) => *seq,
                            None => Self::stored_seq(&tx, &mut self.stored, &room)?,
                        } + 1;
                        if msg.seq != expected {
                            // Follows a failed write: refuse, never leave a gap.
                            let _ = done.send(Err(StoreError(format!(
                                "seq {} does not follow the stored {}",
                                msg.seq,
                                expected - 1
                            ))));
                            continue;
                        }
                        if !self.epochs.contains_key(&room) {
                            tx.execute(
                                "INSERT OR IGNORE INTO rooms (name, epoch) VALUES (?1, ?2)",
                                params![&*room, &msg.epoch],
                            )?;
                            self.epochs.insert(room.clone(), msg.epoch.clone());
                        }
                        tx.prepare_cached(
                            "INSERT INTO messages (room, seq, nick, text, ts, cid, session) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )?
                        .execute(params![&*room, msg.seq, msg.from, msg.text, msg.ts, msg.cid, session])?;
                        next.insert(room, msg.seq);
                        waiters.push(done);
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
                    Op::Sweep(done) => {
                        // Taken apart in `run`; answer anyway.
                        let _ = done.send(());
                    }
                }
            }
            tx.commit()
        })();
        match result {
            Ok(()) => {
                for (room, seq) in next {
                    self.touched.insert(room.clone());
                    self.stored.insert(room, seq);
                }
                for done in waiters {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                error!(error = %e, "history write failed; messages refused until it works again");
                let _ = self.conn.execute_batch("ROLLBACK");
                for done in waiters {
                    let _ = done.send(Err(StoreError(e.to_string())));
                }
            }
        }
    }

    /// Deletes what retention no longer keeps (never a room's newest message,
    /// so `seq` always continues), and sessions unseen for [`SESSION_KEEP`].
    fn apply_retention(&mut self) {
        self.last_full_sweep = Some(Instant::now());
        self.last_trim = Instant::now();
        self.touched.clear();
        let keep = self.retention.max_messages.max(1);
        let by_count = self.conn.execute(
            "DELETE FROM messages WHERE seq <= (SELECT max(m.seq) FROM messages m WHERE m.room = messages.room) - ?1",
            [keep],
        );
        let by_age = match self.retention.max_age {
            Some(age) => {
                let cutoff = now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                self.conn.execute(
                    "DELETE FROM messages WHERE ts < ?1 AND seq < (SELECT max(m.seq) FROM messages m WHERE m.room = messages.room)",
                    [cutoff],
                )
            }
            None => Ok(0),
        };
        let keep_ms = i64::try_from(SESSION_KEEP.as_millis()).unwrap_or(i64::MAX);
        let sessions = self
            .conn
            .execute("DELETE FROM sessions WHERE seen < ?1", [now_ms() - keep_ms]);
        if let Err(e) = by_count.and(by_age).and(sessions) {
            warn!(error = %e, "retention sweep failed");
        }
    }
}
