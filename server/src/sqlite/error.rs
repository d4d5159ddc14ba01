//! What can go wrong with the SQLite store, at start-up or later.

use crate::log::StoreError;
use std::{io, path::PathBuf};

/// The SQLite store's failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory cannot be made.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    /// A file or the directory is readable by others and cannot be
    /// restricted to its owner.
    #[error("cannot restrict {}: {source}", path.display())]
    Restrict { path: PathBuf, source: io::Error },
    /// A file cannot be opened (or created).
    #[error("cannot open {}: {source}", path.display())]
    OpenFile { path: PathBuf, source: io::Error },
    /// A file cannot be written or synced.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile { path: PathBuf, source: io::Error },
    /// The database cannot be opened, read or set up.
    #[error("{}: {source}", path.display())]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// SQLite would not switch to write-ahead logging.
    #[error("{}: cannot use write-ahead logging (journal mode {mode})", path.display())]
    NoWal { path: PathBuf, mode: String },
    /// `PRAGMA quick_check` found damage.
    #[error(
        "{} is damaged: {check}. Restore it from a backup, or move it away to start with an empty history",
        path.display()
    )]
    Damaged { path: PathBuf, check: String },
    /// A newer server wrote this schema.
    #[error(
        "{} was written by a newer version of this server (schema {found}; this one knows {known})",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// The record of acknowledged commits is not one this server wrote.
    #[error(
        "{} is damaged (it records how many writes were acknowledged). If the database is intact, delete it and start again: every room will start a new epoch",
        path.display()
    )]
    DamagedWitness { path: PathBuf },
    /// The writer thread cannot be started.
    #[error("cannot start the history writer: {0}")]
    Thread(io::Error),
    /// The record of acknowledged commits cannot be written.
    #[error("cannot record the commit: {0}")]
    Witness(io::Error),
    /// A read or a write failed.
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    /// A read panicked while holding the read connection.
    #[error("read lock poisoned")]
    Poisoned,
    /// A read's blocking task failed.
    #[error("read task: {0}")]
    ReadTask(#[from] tokio::task::JoinError),
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        StoreError::failed(e)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sql(e).into()
    }
}
