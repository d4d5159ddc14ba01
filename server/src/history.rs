//! The port of the embedded stores (memory, SQLite): a [`Log`] that also
//! keeps sessions across restarts.

use crate::{accounts::Accounts, log::Log};

/// What a session left behind, for a client that comes back after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedSession {
    /// Last nickname.
    pub nick: String,
    /// Rooms it was in.
    pub rooms: Vec<String>,
}

/// A store of rooms' entries (a [`Log`]) that also keeps sessions when it
/// can: the embedded stores (memory, SQLite).
pub trait HistoryStore: Log {
    /// A session saved by an earlier run, if the store keeps them.
    fn load_session(&self, _token: &str) -> Option<SavedSession> {
        None
    }
    /// Saves a session's nickname and rooms (best effort).
    fn save_session(&self, _token: &str, _session: &SavedSession) {}
    /// Sessions saved by earlier runs that have not expired: each token's
    /// hash and nickname, so their nicknames stay theirs (start-up).
    fn held_nicks(&self) -> Vec<(String, String, std::time::Duration)> {
        Vec::new()
    }
    /// Resolves once everything handed over so far (messages, session
    /// saves) is written; `None` when nothing waits (shutdown uses it, so
    /// a session saved just before a restart is not lost).
    fn flushed(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        None
    }
    /// Where this store keeps accounts, if it does.
    fn accounts(&self) -> Option<std::sync::Arc<dyn Accounts>> {
        None
    }
    /// Where this store keeps rooms' access rules (with the accounts).
    fn access(&self) -> Option<std::sync::Arc<dyn crate::access::Access>> {
        None
    }
    /// How this store searches what it keeps, if it does.
    fn search(&self) -> Option<std::sync::Arc<dyn crate::search::Search>> {
        None
    }
}
