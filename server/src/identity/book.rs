//! This process's book of who is who: nicknames (unique by look-alike
//! key) and sessions.
//!
//! A session outlives its connection so a reconnecting client keeps its
//! nickname and rooms; its nickname stays reserved for it for the whole
//! session lifetime (`--session-ttl-secs`), so nobody takes it the moment
//! its owner disconnects. A connection without a session (a demo client)
//! holds its nickname only while it is connected. Sessions are known here
//! by the hash of their token ([`token_hash`]), never by the token.

use crate::{ids::ConnId, outbox::Kill};
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

/// Who holds a nickname: a live connection, a session (kept for the
/// session's lifetime while it is disconnected), or both.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    /// The connection holding it; 0 for none (connection ids start at 1).
    conn: ConnId,
    /// The session it belongs to, if any (boxed: a demo connection's entry
    /// stays two words, and the server holds one per connection).
    hold: Option<Box<Hold>>,
}

/// A session's claim on a nickname.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hold {
    /// Hash of the session's token ([`token_hash`]).
    session: String,
    /// A stored session's hold, not resumed in this run: until when.
    until: Option<Instant>,
}

impl Holder {
    fn new(conn: ConnId, session: Option<&str>) -> Self {
        Self {
            conn,
            hold: session.map(|s| {
                Box::new(Hold {
                    session: s.to_owned(),
                    until: None,
                })
            }),
        }
    }

    fn conn(&self) -> Option<ConnId> {
        (self.conn != 0).then_some(self.conn)
    }

    fn session(&self) -> Option<&str> {
        self.hold.as_ref().map(|h| h.session.as_str())
    }

    fn until(&self) -> Option<Instant> {
        self.hold.as_ref().and_then(|h| h.until)
    }

    fn is(&self, conn: ConnId, session: Option<&str>) -> bool {
        self.conn() == Some(conn) || (session.is_some() && self.session() == session)
    }
}

#[derive(Default)]
struct Inner {
    /// [`crate::names::nick_key`] → holder.
    nicks: HashMap<String, Holder>,
    sessions: HashMap<String, SessionRecord>,
}

/// Sessions remembered at most; past it the ones released longest ago
/// are forgotten early (each address's budget bounds how fast they come).
const MAX_SESSIONS: usize = 200_000;

/// Nicknames and sessions of this process (of the whole server when it
/// runs alone; in cluster mode Redis decides nicknames and keeps sessions,
/// and the book knows which local connection uses which session).
#[derive(Default)]
pub struct Book {
    inner: Mutex<Inner>,
}

fn key(nick: &str) -> String {
    crate::names::nick_key(nick)
}

pub use crate::ids::{new_token, token_hash};

pub use crate::names::suffixed;

impl Book {
    fn locked(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a single map operation; a poisoned lock is consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `wanted`, or `wanted-2`, `wanted-3`… if somebody else holds it
    /// (a live connection, or a session it belongs to). `session` is the
    /// hash of the claimer's token. Returns the nickname granted.
    pub fn claim_free(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> String {
        let mut inner = self.locked();
        let mut candidate = wanted.to_owned();
        let mut n = 2u64;
        loop {
            match inner.nicks.get(&key(&candidate)) {
                Some(holder) if !holder.is(conn, session) => {
                    candidate = suffixed(wanted, n);
                    n += 1;
                }
                _ => break,
            }
        }
        inner
            .nicks
            .insert(key(&candidate), Holder::new(conn, session));
        candidate
    }

    /// Takes exactly `wanted`; `false` when somebody else holds it.
    pub fn claim_exact(&self, wanted: &str, conn: ConnId, session: Option<&str>) -> bool {
        let mut inner = self.locked();
        match inner.nicks.get(&key(wanted)) {
            Some(holder) if !holder.is(conn, session) => false,
            _ => {
                inner.nicks.insert(key(wanted), Holder::new(conn, session));
                true
            }
        }
    }

    /// Gives a nickname back (a rename, or a connection without a
    /// session that ends), if `conn` holds it.
    pub fn release(&self, nick: &str, conn: ConnId) {
        let mut inner = self.locked();
        if inner
            .nicks
            .get(&key(nick))
            .is_some_and(|h| h.conn() == Some(conn))
        {
            inner.nicks.remove(&key(nick));
        }
    }

    /// A connection with a session ended: its nickname stays the
    /// session's until the session expires.
    pub fn detach(&self, nick: &str, conn: ConnId) {
        let mut inner = self.locked();
        let k = key(nick);
        match inner.nicks.get_mut(&k) {
            Some(holder) if holder.conn() == Some(conn) && holder.hold.is_some() => {
                holder.conn = 0;
            }
            Some(holder) if holder.conn() == Some(conn) => {
                inner.nicks.remove(&k);
            }
            _ => {}
        }
    }

    /// Holds `nick` until `until` for a stored session (its token's hash)
    /// that is not connected, unless somebody holds it already (start-up).
    pub fn hold(&self, nick: &str, session: &str, until: Instant) {
        self.locked()
            .nicks
            .entry(key(nick))
            .or_insert_with(|| Holder {
                conn: 0,
                hold: Some(Box::new(Hold {
                    session: session.to_owned(),
                    until: Some(until),
                })),
            });
    }

    /// Starts using the session whose token hashes to `session` (made
    /// when it is new). Returns the record as it was (`None`: new) and the
    /// connection that was using it (to be taken over).
    pub fn open_session(
        &self,
        session: &str,
        conn: ConnId,
        kill: Kill,
    ) -> (Option<SessionRecord>, Option<Kill>) {
        let mut inner = self.locked();
        if let Some(record) = inner.sessions.get_mut(session) {
            let before = record.clone();
            record.live = Some(conn);
            record.released = None;
            record.kill = Some(kill);
            let previous = match (before.live, &before.kill) {
                (Some(c), Some(k)) if c != conn => Some((c, k.clone())),
                _ => None,
            };
            // The nick moves with the session from the connection it takes over.
            if let Some((old_conn, _)) = previous
                && let Some(holder) = inner.nicks.get_mut(&key(&before.nick))
                && holder.conn() == Some(old_conn)
            {
                holder.conn = conn;
            }
            return (Some(before), previous.map(|(_, k)| k));
        }
        if inner.sessions.len() >= MAX_SESSIONS {
            forget_oldest(&mut inner);
        }
        inner.sessions.insert(
            session.to_owned(),
            SessionRecord {
                live: Some(conn),
                kill: Some(kill),
                ..SessionRecord::default()
            },
        );
        (None, None)
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
                shared::close::POLICY,
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

    /// Forgets sessions released more than `ttl` ago, and frees the
    /// nicknames they held.
    pub fn sweep(&self, ttl: Duration) -> usize {
        let mut inner = self.locked();
        let before = inner.sessions.len();
        let mut gone = Vec::new();
        inner.sessions.retain(|session, r| {
            let keep = r.released.is_none_or(|t| t.elapsed() < ttl);
            if !keep {
                gone.push(session.clone());
            }
            keep
        });
        free_nicks(&mut inner, &gone);
        // Holds of stored sessions not resumed in this run.
        let now = Instant::now();
        inner
            .nicks
            .retain(|_, h| h.conn().is_some() || h.until().is_none_or(|until| until > now));
        before - inner.sessions.len()
    }
}

/// Frees the disconnected nick holds of these sessions (token hashes).
fn free_nicks(inner: &mut Inner, sessions: &[String]) {
    if sessions.is_empty() {
        return;
    }
    inner.nicks.retain(|_, h| {
        h.conn().is_some() || h.session().is_none_or(|s| !sessions.iter().any(|x| x == s))
    });
}

/// Forgets the tenth of released sessions released longest ago.
fn forget_oldest(inner: &mut Inner) {
    let mut released: Vec<(Instant, String)> = inner
        .sessions
        .iter()
        .filter_map(|(t, r)| r.released.map(|at| (at, t.clone())))
        .collect();
    released.sort();
    let gone: Vec<String> = released
        .into_iter()
        .take(MAX_SESSIONS / 10)
        .map(|(_, t)| t)
        .collect();
    for session in &gone {
        inner.sessions.remove(session);
    }
    free_nicks(inner, &gone);
}

#[cfg(test)]
mod tests;
