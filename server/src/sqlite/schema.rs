//! Opening the database: connections, the schema and its migrations, the
//! files' permissions, and the check that no acknowledged write was lost.
//!
//! **Lost writes.** SQLite cannot tell a write-ahead log that was
//! truncated or deleted after a crash from one that simply ended there:
//! it opens what is left, and the next message of a room would take a
//! `seq` clients already hold for another message. So every transaction
//! that acknowledges anything also counts itself in `meta.commits`, and
//! the writer records that count in a small file beside the database
//! (`chat.db-commits`) after the commit is on disk and before anyone is
//! told. At start-up a database that counts fewer commits than the file
//! lost acknowledged writes: every room then starts a new `epoch`, so no
//! `(epoch, seq)` ever names two messages, and the start says so loudly.
//! The file is written without an fsync of its own (synced once a
//! second): a process crash cannot lose it, and a power loss that loses
//! it cannot have lost the log, which is synced before it.

use super::Error;
use rusqlite::{Connection, OptionalExtension};
use std::{
    fs::{File, OpenOptions},
    os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};
use tracing::{error, info, warn};

/// The schema this code writes (`PRAGMA user_version`).
/// 1: session tokens are stored only as hashes; `meta.commits` counts
/// acknowledging transactions.
/// 2: messages have edits and deletes (`kind`, `target`, `changed`,
/// `deleted`), their author's identity (`author`) and the message they
/// answer (`reply`).
const VERSION: i64 = 2;

/// Full-text search over messages' current text (FTS5, external content:
/// the index holds no copy of the text), kept by triggers: a message is
/// indexed when written, re-indexed when edited, dropped when deleted or
/// trimmed; changes (edits, deletes) are not indexed.
const SEARCH: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    text, content = 'messages', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages
WHEN new.kind IS NULL BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text ON messages
WHEN old.kind IS NULL AND old.deleted = 0 BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO messages_fts (rowid, text) SELECT new.rowid, new.text WHERE new.deleted = 0;
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages
WHEN old.kind IS NULL AND old.deleted = 0 BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
";

/// What version 2 adds to an existing `messages` table.
const MESSAGES_V2: &str = "
ALTER TABLE messages ADD COLUMN kind TEXT;
ALTER TABLE messages ADD COLUMN target INTEGER;
ALTER TABLE messages ADD COLUMN changed INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN author TEXT;
ALTER TABLE messages ADD COLUMN reply INTEGER;
";

pub(super) const SCHEMA: &str = "
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
    session TEXT,
    kind    TEXT,
    target  INTEGER,
    changed INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    author  TEXT,
    reply   INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_seq ON messages (room, seq);
DROP INDEX IF EXISTS messages_cid;
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    nick  TEXT NOT NULL,
    rooms TEXT NOT NULL,
    seen  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('commits', 0);
CREATE TABLE IF NOT EXISTS accounts (
    key      TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    hash     TEXT NOT NULL,
    admin    INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS account_sessions (
    token  TEXT PRIMARY KEY,
    key    TEXT NOT NULL,
    opened INTEGER NOT NULL,
    seen   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS room_access (
    room    TEXT PRIMARY KEY,
    title   TEXT NOT NULL,
    private INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS room_roles (
    room TEXT NOT NULL,
    key  TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (room, key)
);
CREATE INDEX IF NOT EXISTS room_roles_by_key ON room_roles (key);
CREATE TABLE IF NOT EXISTS moderation (
    id   INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    at   INTEGER NOT NULL,
    by   TEXT NOT NULL,
    what TEXT NOT NULL,
    whom TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS moderation_by_room ON moderation (room, id);
CREATE TABLE IF NOT EXISTS invites (
    code    TEXT PRIMARY KEY,
    uses    INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    by      TEXT NOT NULL
);
";

/// A connection in WAL mode with `synchronous=FULL`.
pub(super) fn connect(path: &Path) -> Result<Connection, Error> {
    let fail = |source| Error::Database {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(fail)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
    // `secure_delete` (below): a deleted or edited message's old text is
    // overwritten in the database pages, not left in free space.
    // journal_mode answers with a row; read it.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NoWal {
            path: path.to_owned(),
            mode,
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=8192; PRAGMA secure_delete=FAST;",
    )
    .map_err(fail)?;
    Ok(conn)
}

/// The data directory and database files, readable by their owner only
/// (created so; tightened if an earlier version left them open).
pub(super) fn private_files(dir: &Path, db: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    let tighten = |path: &Path, mode: u32| -> Result<(), Error> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
                    |source| Error::Restrict {
                        path: path.to_owned(),
                        source,
                    },
                )
            }
            _ => Ok(()),
        }
    };
    tighten(dir, 0o700)?;
    // SQLite creates the -wal and -shm files with the database's mode.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)
        .map_err(|source| Error::OpenFile {
            path: db.to_owned(),
            source,
        })?;
    for suffix in ["", "-wal", "-shm", "-commits"] {
        tighten(&with_suffix(db, suffix), 0o600)?;
    }
    Ok(())
}

/// `chat.db` + `-wal`, for instance.
pub(super) fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates the schema, or brings an older one up to [`VERSION`].
pub(super) fn migrate(conn: &Connection, db: &Path) -> Result<(), Error> {
    let fail = |source| Error::Database {
        path: db.to_owned(),
        source,
    };
    let existed: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'messages'",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(fail)?;
    if version > VERSION {
        return Err(Error::NewerSchema {
            path: db.to_owned(),
            found: version,
            known: VERSION,
        });
    }
    conn.execute_batch(SCHEMA).map_err(fail)?;
    if existed && version < 1 {
        // Tokens were stored as they are: keep only their hashes.
        conn.create_scalar_function(
            "token_hash",
            1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8
                | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                let token: Option<String> = ctx.get(0)?;
                Ok(token.map(|t| crate::ids::token_hash(&t)))
            },
        )
        .map_err(fail)?;
        conn.execute_batch(
            "BEGIN;
             UPDATE sessions SET token = token_hash(token);
             UPDATE messages SET session = token_hash(session) WHERE session IS NOT NULL;
             COMMIT;",
        )
        .map_err(fail)?;
        info!(path = %db.display(), "stored session tokens replaced by their hashes");
    }
    if existed && version < 2 {
        conn.execute_batch(&format!(
            "BEGIN; {MESSAGES_V2} {SEARCH} INSERT INTO messages_fts (messages_fts) VALUES ('rebuild'); COMMIT;"
        ))
        .map_err(fail)?;
        info!(path = %db.display(), "messages can now be edited and deleted");
    }
    conn.execute_batch(SEARCH).map_err(fail)?;
    // A deleted or edited message's words leave the index at once (no
    // tombstones waiting for a merge), as its text leaves the table.
    conn.execute(
        "INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1)",
        [],
    )
    .map_err(fail)?;
    conn.pragma_update(None, "user_version", VERSION)
        .map_err(fail)?;
    Ok(())
}

/// The record of acknowledged commits beside the database.
pub(super) struct Witness {
    file: File,
    dirty: bool,
}

const MAGIC: &[u8; 8] = b"chatack1";

impl Witness {
    /// Opens `chat.db-commits` and compares it with the database. If the
    /// database lost acknowledged commits, every room gets a new epoch.
    pub(super) fn open(conn: &Connection, db: &Path) -> Result<(Self, u64), Error> {
        let path = with_suffix(db, "-commits");
        let fail = |source| Error::Database {
            path: db.to_owned(),
            source,
        };
        let stored: u64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'commits'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(fail)?
            .unwrap_or(0);
        let existing = std::fs::read(&path).ok();
        let recorded = match &existing {
            Some(bytes) if bytes.len() == 16 && bytes[..8] == MAGIC[..] => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[8..]);
                Some(u64::from_le_bytes(n))
            }
            Some(_) => {
                return Err(Error::DamagedWitness { path });
            }
            None => None,
        };
        let lost = match recorded {
            Some(acked) => acked > stored,
            // A database that has acknowledged writes but no record of
            // them: the record was removed, or the database copied without
            // it. When in doubt, never reuse a position.
            None => stored > 0,
        };
        if lost {
            let acked = recorded.map_or("unknown".into(), |n| n.to_string());
            error!(
                path = %db.display(),
                wal = %with_suffix(db, "-wal").display(),
                acknowledged = %acked,
                stored,
                "the database lost acknowledged writes (a write-ahead log truncated or deleted, or an older copy restored); every room starts a new epoch so no position names two messages"
            );
            let rooms = conn
                .execute("UPDATE rooms SET epoch = lower(hex(randomblob(8)))", [])
                .map_err(fail)?;
            warn!(rooms, "rooms given a new epoch");
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::OpenFile {
                path: path.clone(),
                source,
            })?;
        let mut witness = Self { file, dirty: false };
        witness
            .record(stored)
            .and_then(|()| witness.sync())
            .map_err(|source| Error::WriteFile { path, source })?;
        Ok((witness, stored))
    }

    /// `commits` acknowledging transactions are on disk.
    pub(super) fn record(&mut self, commits: u64) -> std::io::Result<()> {
        let mut buf = [0u8; 16];
        buf[..8].copy_from_slice(MAGIC);
        buf[8..].copy_from_slice(&commits.to_le_bytes());
        self.file.write_all_at(&buf, 0)?;
        self.dirty = true;
        Ok(())
    }

    /// Makes the record durable (called about once a second).
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
}
