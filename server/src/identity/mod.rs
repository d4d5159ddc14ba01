//! Who is who, as ports: nicknames ([`Nicks`]) and saved sessions
//! ([`Sessions`]), chosen once at start-up like the rooms' log and bus.
//!
//! - [`Here`] keeps them in this process: nicknames in the [`Book`],
//!   sessions in the history store (SQLite keeps them across restarts).
//! - `cluster::Cluster` keeps them in Redis, the same for every process.
//!
//! Either way the [`Book`] knows which local connection uses which session
//! (a session resumed on a second connection closes the first).

mod book;
mod signed_in;

pub use book::{Book, SessionRecord, new_token, suffixed, token_hash};
pub use signed_in::{SIGNED_OUT, Signed, SignedIn};

use crate::{
    history::{HistoryStore, SavedSession},
    ids::ConnId,
    log::Read,
};
use std::sync::Arc;

/// Nicknames, unique (by look-alike key) among everyone this process
/// shares rooms with.
pub trait Nicks: Send + Sync {
    /// `wanted`, or `wanted-2`, `wanted-3`… if somebody else holds it:
    /// the nickname granted. `session` is the hash of the claimer's token.
    fn claim_free(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> Read<String>;
    /// Exactly `wanted`: `false` when somebody else holds it.
    fn claim_exact(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> Read<bool>;
    /// Gives a nickname back if `conn` holds it.
    fn release(&self, nick: &str, conn: ConnId);
    /// A connection with a session (its token's hash) ended: the nickname
    /// stays the session's until the session expires.
    fn detach(&self, nick: &str, conn: ConnId, session: &str);
}

/// Sessions saved for a client that comes back later, or elsewhere.
pub trait Sessions: Send + Sync {
    /// A saved session (by its token's hash), if one is kept.
    fn load(&self, token: &str) -> Read<Option<SavedSession>>;
    /// Saves a session's nickname and rooms (best effort).
    fn save(&self, token: &str, saved: &SavedSession);
    /// `token` is live on `conn` now: a connection of another process that
    /// used it is to be closed. (In one process the [`Book`] does that.)
    fn went_live(&self, _token: &str, _conn: ConnId) -> Read<()> {
        Box::pin(async { Ok(()) })
    }
}

/// Nicknames and sessions when this process runs alone.
pub struct Here {
    pub book: Arc<Book>,
    pub store: Arc<dyn HistoryStore>,
}

impl Nicks for Here {
    fn claim_free(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> Read<String> {
        let granted = self.book.claim_free(wanted, conn, session);
        Box::pin(async move { Ok(granted) })
    }

    fn claim_exact(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> Read<bool> {
        let granted = self.book.claim_exact(wanted, conn, session);
        Box::pin(async move { Ok(granted) })
    }

    fn release(&self, nick: &str, conn: ConnId) {
        self.book.release(nick, conn);
    }

    fn detach(&self, nick: &str, conn: ConnId, _session: &str) {
        self.book.detach(nick, conn);
    }
}

impl Sessions for Here {
    fn load(&self, token: &str) -> Read<Option<SavedSession>> {
        let saved = self.store.load_session(token);
        Box::pin(async move { Ok(saved) })
    }

    fn save(&self, token: &str, saved: &SavedSession) {
        self.store.save_session(token, saved);
    }
}
