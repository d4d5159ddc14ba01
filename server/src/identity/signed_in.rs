//! Which live connections of this process belong to which sign-in
//! session, so that ending the session (sign-out) closes them at once.
//!
//! One entry per signed-in connection, removed when it ends: bounded by
//! the connection limits.

use crate::{
    ids::ConnId,
    outbox::{Kill, Outbox},
};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

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

#[derive(Default)]
struct Maps {
    /// Sign-in session → its connections.
    by_session: HashMap<String, Vec<(ConnId, Kill)>>,
    /// Account key → its connections' outboxes.
    by_account: HashMap<String, Vec<(ConnId, Outbox)>>,
    /// Sessions ended lately (oldest first), so that an upgrade whose
    /// cookie was checked just before its session ended is refused.
    ended: VecDeque<(Instant, String)>,
    ended_set: HashSet<String>,
}

/// How long an ended session is remembered: longer than any upgrade
/// takes between its cookie check and its connection's start.
const ENDED_FOR: Duration = Duration::from_secs(60);
/// Ended sessions remembered at most.
const ENDED_MAX: usize = 10_000;

impl Maps {
    fn remember_ended(&mut self, session: &str, now: Instant) {
        while let Some((at, old)) = self.ended.front() {
            if now.duration_since(*at) < ENDED_FOR && self.ended.len() < ENDED_MAX {
                break;
            }
            self.ended_set.remove(old);
            self.ended.pop_front();
        }
        if self.ended_set.insert(session.to_owned()) {
            self.ended.push_back((now, session.to_owned()));
        }
    }
}

/// Signed-in connections of this process, by sign-in session (its
/// token's hash) and by account.
#[derive(Default)]
pub struct SignedIn {
    maps: Mutex<Maps>,
}

fn drop_conn<T>(map: &mut HashMap<String, Vec<(ConnId, T)>>, key: &str, conn: ConnId) {
    if let Some(conns) = map.get_mut(key) {
        conns.retain(|(c, _)| *c != conn);
        if conns.is_empty() {
            map.remove(key);
        }
    }
}

impl SignedIn {
    fn locked(&self) -> std::sync::MutexGuard<'_, Maps> {
        // Every update is a few map operations that cannot panic halfway.
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `conn` is signed in as `signed`: `false` (and nothing kept) when
    /// its session ended since its cookie was checked.
    pub fn add(&self, signed: &Signed, conn: ConnId, kill: Kill, outbox: Outbox) -> bool {
        let mut maps = self.locked();
        if maps.ended_set.contains(&signed.session) {
            return false;
        }
        maps.by_session
            .entry(signed.session.clone())
            .or_default()
            .push((conn, kill));
        maps.by_account
            .entry(signed.key.clone())
            .or_default()
            .push((conn, outbox));
        true
    }

    /// `conn` ended.
    pub fn remove(&self, signed: &Signed, conn: ConnId) {
        let mut maps = self.locked();
        drop_conn(&mut maps.by_session, &signed.session, conn);
        drop_conn(&mut maps.by_account, &signed.key, conn);
    }

    /// The session ended: closes its connections with `reason`. Returns
    /// how many there were (they leave `by_account` as they end).
    pub fn close(&self, session: &str, reason: &'static str) -> usize {
        let conns = {
            let mut maps = self.locked();
            maps.remember_ended(session, Instant::now());
            maps.by_session.remove(session).unwrap_or_default()
        };
        for (_, kill) in &conns {
            kill.close(shared::close::POLICY, reason);
        }
        conns.len()
    }

    /// Pushes `frame` to every connection of the account with `key`;
    /// how many there were.
    pub fn push_to_account(&self, key: &str, frame: &bytes::Bytes) -> usize {
        let maps = self.locked();
        let conns = maps.by_account.get(key).map_or(&[][..], Vec::as_slice);
        for (_, outbox) in conns {
            outbox.push(frame.clone());
        }
        conns.len()
    }

    /// The sign-in sessions with connections here now.
    pub fn sessions(&self) -> Vec<String> {
        self.locked().by_session.keys().cloned().collect()
    }

    /// Signed-in connections here now.
    pub fn len(&self) -> usize {
        self.locked().by_session.values().map(Vec::len).sum()
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
        let who = |session: &str, key: &str| Signed {
            name: key.to_owned(),
            key: key.to_owned(),
            admin: false,
            session: session.to_owned(),
        };
        let (a, b) = (who("a", "ann"), who("b", "bob"));
        let outbox = || {
            crate::outbox::Outbox::new(
                crate::outbox::Bounds {
                    frames: 8,
                    bytes: 1 << 16,
                },
                Kill::default(),
            )
        };
        let (a1, a2, b1) = (Kill::default(), Kill::default(), Kill::default());
        let ((o1, mut r1), (o2, _r2), (o3, _r3)) = (outbox(), outbox(), outbox());
        assert!(book.add(&a, 1, a1.clone(), o1));
        assert!(book.add(&a, 2, a2.clone(), o2));
        assert!(book.add(&b, 3, b1.clone(), o3));
        book.remove(&a, 2);
        assert_eq!(book.len(), 2);
        assert_eq!(
            book.push_to_account("ann", &bytes::Bytes::from_static(b"x")),
            1
        );
        assert!(r1.rx.try_recv().is_ok(), "pushed to ann's connection");
        assert_eq!(book.close("a", SIGNED_OUT), 1);
        assert!(a1.ending().is_some());
        assert!(a2.ending().is_none(), "removed before: not closed");
        assert!(b1.ending().is_none());
        assert_eq!(book.close("a", SIGNED_OUT), 0);
        assert_eq!(book.len(), 1);
        book.remove(&b, 3);
        assert!(book.is_empty());
        // A connection of the ended session that was on its way is refused.
        let (late, _r) = outbox();
        assert!(!book.add(&a, 4, Kill::default(), late));
        assert!(book.is_empty());
    }
}
