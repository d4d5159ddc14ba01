//! Who is who: live nicknames (unique, case-insensitive) and session tokens.
//!
//! A session outlives its connection so a reconnecting client keeps its
//! nickname and rooms; its nickname is reserved only while a connection
//! holds it ("unique among live sessions").

use crate::{room::ConnId, session::outbox::Kill};
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// What a session remembers between connections.
#[derive(Debug, Clone, Default)]
pub struct SessionRecord {
    /// Last nickname.
    pub nick: String,
    /// Rooms it was in.
    pub rooms: Vec<String>,
    /// The connection using it now, if any.
    pub live: Option<ConnId>,
    /// When it was last released.
    pub released: Option<Instant>,
    /// Ends the live connection (when another one takes the session over).
    pub kill: Option<Kill>,
}

#[derive(Default)]
struct Inner {
    /// Lower-cased nickname → holder.
    nicks: HashMap<String, ConnId>,
    sessions: HashMap<String, SessionRecord>,
}

/// Nicknames and sessions of the whole server.
#[derive(Default)]
pub struct Directory {
    inner: Mutex<Inner>,
}

fn key(nick: &str) -> String {
    nick.to_lowercase()
}

/// A new unguessable session token (128 random bits, hex).
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `wanted-n`, cut so it stays within the nickname length limit.
pub fn suffixed(wanted: &str, n: u64) -> String {
    let suffix = format!("-{n}");
    let room = crate::limits::MAX_NICK_CHARS.saturating_sub(suffix.chars().count());
    wanted.chars().take(room).collect::<String>() + &suffix
}

impl Directory {
    fn locked(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a single map operation; a poisoned lock is consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `wanted`, or `wanted-2`, `wanted-3`… if taken by another
    /// connection. Returns the nickname granted.
    pub fn claim_free(&self, wanted: &str, conn: ConnId) -> String {
        let mut inner = self.locked();
        let mut candidate = wanted.to_owned();
        let mut n = 2u64;
        loop {
            match inner.nicks.get(&key(&candidate)) {
                Some(holder) if *holder != conn => {
                    candidate = suffixed(wanted, n);
                    n += 1;
                }
                _ => break,
            }
        }
        inner.nicks.insert(key(&candidate), conn);
        candidate
    }

    /// Takes exactly `wanted`; `false` when another connection holds it.
    pub fn claim_exact(&self, wanted: &str, conn: ConnId) -> bool {
        let mut inner = self.locked();
        match inner.nicks.get(&key(wanted)) {
            Some(holder) if *holder != conn => false,
            _ => {
                inner.nicks.insert(key(wanted), conn);
                true
            }
        }
    }

    /// Gives a nickname back, if `conn` holds it.
    pub fn release(&self, nick: &str, conn: ConnId) {
        let mut inner = self.locked();
        if inner.nicks.get(&key(nick)) == Some(&conn) {
            inner.nicks.remove(&key(nick));
        }
    }

    /// Starts using a session: the known one when `token` names one,
    /// else a new one. Returns the token, the record as it was, and the
    /// connection that was using it (to be taken over).
    pub fn open_session(
        &self,
        token: Option<&str>,
        conn: ConnId,
        kill: Kill,
    ) -> (String, Option<SessionRecord>, Option<Kill>) {
        let mut inner = self.locked();
        if let Some(record) = token.and_then(|t| inner.sessions.get_mut(t)) {
            let before = record.clone();
            record.live = Some(conn);
            record.released = None;
            record.kill = Some(kill);
            let token = token.unwrap_or_default().to_owned();
            let previous = match (before.live, &before.kill) {
                (Some(c), Some(k)) if c != conn => Some((c, k.clone())),
                _ => None,
            };
            // The nick moves with the session from the connection it takes over.
            if let Some((old_conn, _)) = previous
                && let Some(holder) = inner.nicks.get_mut(&key(&before.nick))
                && *holder == old_conn
            {
                *holder = conn;
            }
            return (token, Some(before), previous.map(|(_, k)| k));
        }
        let token = new_token();
        inner.sessions.insert(
            token.clone(),
            SessionRecord {
                live: Some(conn),
                kill: Some(kill),
                ..SessionRecord::default()
            },
        );
        (token, None, None)
    }

    /// The session moved to another process: ends its connection here if
    /// `conn` still has it. Returns whether one was ended.
    pub fn moved_away(&self, token: &str, conn: ConnId) -> bool {
        let kill = {
            let mut inner = self.locked();
            match inner.sessions.get_mut(token) {
                Some(record) if record.live == Some(conn) => record.kill.take(),
                _ => None,
            }
        };
        kill.map(|k| {
            k.close(
                crate::session::close::POLICY,
                "session resumed on another connection",
            )
        })
        .is_some()
    }

    /// Whether a session token is known to this process.
    pub fn knows(&self, token: &str) -> bool {
        self.locked().sessions.contains_key(token)
    }

    /// Brings back a session saved by an earlier run of the server.
    pub fn restore(&self, token: &str, nick: String, rooms: Vec<String>) {
        self.locked()
            .sessions
            .entry(token.to_owned())
            .or_insert(SessionRecord {
                nick,
                rooms,
                released: Some(Instant::now()),
                ..SessionRecord::default()
            });
    }

    /// Saves what a session had, when its connection ends.
    pub fn close_session(&self, token: &str, conn: ConnId, nick: &str, rooms: Vec<String>) {
        let mut inner = self.locked();
        if let Some(record) = inner.sessions.get_mut(token)
            && record.live == Some(conn)
        {
            record.live = None;
            record.kill = None;
            record.released = Some(Instant::now());
            record.nick = nick.to_owned();
            record.rooms = rooms;
        }
    }

    /// Records the session's current nickname and rooms while it is live.
    pub fn update_session(&self, token: &str, conn: ConnId, nick: &str, rooms: Vec<String>) {
        let mut inner = self.locked();
        if let Some(record) = inner.sessions.get_mut(token)
            && record.live == Some(conn)
        {
            record.nick = nick.to_owned();
            record.rooms = rooms;
        }
    }

    /// Forgets sessions released more than `ttl` ago.
    pub fn sweep(&self, ttl: Duration) -> usize {
        let mut inner = self.locked();
        let before = inner.sessions.len();
        inner
            .sessions
            .retain(|_, r| r.released.is_none_or(|t| t.elapsed() < ttl));
        before - inner.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_nicks_get_a_suffix_and_case_does_not_matter() {
        let d = Directory::default();
        assert_eq!(d.claim_free("ann", 1), "ann");
        assert_eq!(d.claim_free("Ann", 2), "Ann-2");
        assert_eq!(d.claim_free("ann", 3), "ann-3");
        assert_eq!(d.claim_free("ann", 1), "ann", "the holder keeps it");
        assert!(!d.claim_exact("ANN", 2));
        d.release("ann", 1);
        assert!(d.claim_exact("ANN", 2));
    }

    #[test]
    fn suffixed_nicks_stay_within_the_limit() {
        let d = Directory::default();
        let long = "x".repeat(32);
        d.claim_free(&long, 1);
        let second = d.claim_free(&long, 2);
        assert_eq!(second.chars().count(), 32);
        assert!(second.ends_with("-2"));
    }

    #[test]
    fn sessions_resume_and_report_takeover() {
        let d = Directory::default();
        let first = Kill::default();
        let (token, before, prev) = d.open_session(None, 1, first.clone());
        assert!(before.is_none() && prev.is_none());
        assert_eq!(token.len(), 32);
        d.update_session(&token, 1, "ann", vec!["a".into()]);
        let (again, before, prev) = d.open_session(Some(&token), 2, Kill::default());
        assert_eq!(again, token);
        assert_eq!(before.map(|r| r.rooms), Some(vec!["a".to_string()]));
        prev.expect("the first connection is handed back")
            .close(1008, "taken over");
        assert!(first.is_fired());
        let (other, before, _) = d.open_session(Some("nonsense"), 3, Kill::default());
        assert_ne!(other, "nonsense");
        assert!(before.is_none());
    }
}
