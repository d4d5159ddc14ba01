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

mod access;
mod accounts;

pub use accounts::SqliteAccounts;
mod cids;
mod error;
mod ports;
mod reads;
mod schema;
mod search;
mod writer;

pub use cids::DEDUP_WINDOW;
pub use error::Error;

use crate::{
    history::SavedSession,
    log::{Entry, Placed, StoreError},
};
use rusqlite::Connection;
use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{Arc, Mutex, atomic::AtomicUsize, mpsc},
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::oneshot;
use tracing::info;

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
    /// Accounts and sign-in sessions: rare, small writes on a connection
    /// of their own (they wait for the message writer's commit, at most
    /// its busy timeout).
    accounts: Arc<Mutex<Connection>>,
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
        let conn = self.read.lock().map_err(|_| Error::Poisoned)?;
        f(&conn).map_err(StoreError::from)
    }
}

/// The SQLite history store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
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
        let write = schema::connect(&path)?;
        let check: String = write
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|source| Error::Database {
                path: path.clone(),
                source,
            })?;
        if check != "ok" {
            return Err(Error::Damaged { path, check }.into());
        }
        schema::migrate(&write, &path)?;
        let (witness, commits) = schema::Witness::open(&write, &path)?;
        let read = schema::connect(&path)?;
        let accounts = schema::connect(&path)?;
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
            .map_err(Error::Thread)?;
        info!(path = %path.display(), "history store open");
        Ok(Self {
            shared: Arc::new(Shared {
                read: Mutex::new(read),
                accounts: Arc::new(Mutex::new(accounts)),
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
