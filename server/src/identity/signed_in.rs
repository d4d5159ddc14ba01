//! Which live connections of this process belong to which sign-in
//! session, so that ending the session (sign-out) closes them at once.
//!
//! One entry per signed-in connection, removed when it ends: bounded by
//! the connection limits.

use crate::{ids::ConnId, outbox::Kill};
use std::{collections::HashMap, sync::Mutex};

/// The close reason a signed-out connection gets.
pub const SIGNED_OUT: &str = "signed out";

/// Who a signed-in connection is: its account, and the sign-in session
/// it rides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The account's name, which is the connection's nickname.
    pub name: String,
    /// Its look-alike key (`names::nick_key`).
    pub key: String,
    /// A server administrator.
    pub admin: bool,
    /// The sign-in session's token hash.
    pub session: String,
}

/// Signed-in connections of this process, by sign-in session (its
/// token's hash).
#[derive(Default)]
pub struct SignedIn {
    by_session: Mutex<HashMap<String, Vec<(ConnId, Kill)>>>,
}

impl SignedIn {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(ConnId, Kill)>>> {
        // Every update is a single map operation; a poisoned lock is consistent.
        self.by_session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `conn` is signed in with the session whose token hashes to `session`.
    pub fn add(&self, session: &str, conn: ConnId, kill: Kill) {
        self.locked()
            .entry(session.to_owned())
            .or_default()
            .push((conn, kill));
    }

    /// `conn` ended.
    pub fn remove(&self, session: &str, conn: ConnId) {
        let mut map = self.locked();
        if let Some(conns) = map.get_mut(session) {
            conns.retain(|(c, _)| *c != conn);
            if conns.is_empty() {
                map.remove(session);
            }
        }
    }

    /// The session ended: closes its connections with `reason`. Returns
    /// how many there were.
    pub fn close(&self, session: &str, reason: &'static str) -> usize {
        let conns = self.locked().remove(session).unwrap_or_default();
        for (_, kill) in &conns {
            kill.close(shared::close::POLICY, reason);
        }
        conns.len()
    }

    /// Signed-in connections here now.
    pub fn len(&self) -> usize {
        self.locked().values().map(Vec::len).sum()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_a_session_closes_its_connections_only() {
        let book = SignedIn::default();
        let (a1, a2, b) = (Kill::default(), Kill::default(), Kill::default());
        book.add("a", 1, a1.clone());
        book.add("a", 2, a2.clone());
        book.add("b", 3, b.clone());
        book.remove("a", 2);
        assert_eq!(book.len(), 2);
        assert_eq!(book.close("a", SIGNED_OUT), 1);
        assert!(a1.ending().is_some());
        assert!(a2.ending().is_none(), "removed before: not closed");
        assert!(b.ending().is_none());
        assert_eq!(book.close("a", SIGNED_OUT), 0);
        assert_eq!(book.len(), 1);
        book.remove("b", 3);
        assert!(book.is_empty());
    }
}
