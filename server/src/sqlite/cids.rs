//! The writer's memory of recent `cid`s, so that a retried `say` gets its
//! original `seq` without asking the database: per room, per session, the
//! last [`RECENT_CIDS`]. A session it does not remember (from an earlier
//! run, or forgotten to bound memory) or one that said more than that may
//! have a `cid` only in the database: then a miss asks there (among the
//! room's last [`DEDUP_WINDOW`] messages).

use shared::chat::Said;
use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

/// `cid`s remembered per session and room without asking the database
/// (a retry comes soon after the original: this covers it).
pub(super) const RECENT_CIDS: usize = 4_096;
/// A retried `cid` is found among this many of the room's newest messages
/// (memory covers recent retries; this is for those after a restart).
pub const DEDUP_WINDOW: u64 = 10_000;
/// Sessions remembered per room; those that posted least lately go first.
const RECENT_SESSIONS: usize = 1_024;

/// One session's recent `cid`s in one room.
#[derive(Default)]
struct SessionCids {
    said: HashMap<Box<str>, Said>,
    order: VecDeque<Box<str>>,
    /// Some were forgotten (or said before this run): a miss must ask the
    /// database.
    evicted: bool,
    /// When it last posted (the room's seq).
    last: u64,
}

/// One room's sessions.
#[derive(Default)]
struct RoomCids {
    sessions: HashMap<Box<str>, SessionCids>,
    /// Sessions dropped from `sessions`: what they said may be in the
    /// database only.
    forgotten: HashSet<Box<str>>,
}

/// What the memory knows of a `(session, cid)`.
pub(super) enum Known {
    /// Placed at this `seq`.
    Placed(Said),
    /// Never placed (the session's every `cid` is remembered).
    New,
    /// Not remembered: the database may have it.
    Ask,
}

/// Every room's recent `cid`s.
pub(super) struct Cids {
    rooms: HashMap<Arc<str>, RoomCids>,
    /// Sessions brought back from an earlier run (shared with the store,
    /// which learns of them as they resume).
    restored: Arc<Mutex<HashSet<String>>>,
}

impl Cids {
    pub(super) fn new(restored: Arc<Mutex<HashSet<String>>>) -> Self {
        Self {
            rooms: HashMap::new(),
            restored,
        }
    }

    pub(super) fn find(&self, room: &str, session: &str, cid: &str) -> Known {
        let cids = self.rooms.get(room).and_then(|r| r.sessions.get(session));
        if let Some(said) = cids.and_then(|c| c.said.get(cid)) {
            return Known::Placed(*said);
        }
        match cids {
            Some(c) if !c.evicted => Known::New,
            _ => Known::Ask,
        }
    }

    /// Lets go of a closed room's `cid`s: a retry after it opens again
    /// asks the database ([`Known::Ask`] for a session not remembered).
    pub(super) fn forget(&mut self, room: &str) {
        self.rooms.remove(room);
    }

    /// Remembers a placement (once it is committed).
    pub(super) fn remember(&mut self, room: &Arc<str>, session: &str, cid: &str, said: Said) {
        let restored = &self.restored;
        let room = self.rooms.entry(room.clone()).or_default();
        if room.sessions.len() >= RECENT_SESSIONS + RECENT_SESSIONS / 8
            && !room.sessions.contains_key(session)
        {
            // Forget the least recent eighth in one go.
            let mut lasts: Vec<u64> = room.sessions.values().map(|c| c.last).collect();
            let (_, nth, _) = lasts.select_nth_unstable(RECENT_SESSIONS / 8);
            let cutoff = *nth;
            let forgotten = &mut room.forgotten;
            room.sessions.retain(|session, c| {
                let keep = c.last > cutoff;
                if !keep {
                    forgotten.insert(session.clone());
                }
                keep
            });
        }
        let forgotten = &room.forgotten;
        let cids = room
            .sessions
            .entry(session.into())
            .or_insert_with_key(|s| SessionCids {
                // What it said before this run, or before it was
                // forgotten, is only in the database.
                evicted: forgotten.contains(s)
                    || restored.lock().map_or(true, |r| r.contains(&**s)),
                ..SessionCids::default()
            });
        cids.last = said.seq;
        if cids.order.len() == RECENT_CIDS
            && let Some(old) = cids.order.pop_front()
        {
            cids.said.remove(&old);
            cids.evicted = true;
        }
        let cid: Box<str> = cid.into();
        cids.said.insert(cid.clone(), said);
        cids.order.push_back(cid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_4096_are_remembered_and_older_ones_ask_the_database() {
        let mut cids = Cids::new(Arc::default());
        let room: Arc<str> = "r".into();
        assert!(
            matches!(cids.find("r", "s", "c0"), Known::Ask),
            "unknown session"
        );
        for seq in 1..=RECENT_CIDS as u64 {
            cids.remember(&room, "s", &format!("c{seq}"), Said { seq, ts: 0 });
        }
        assert!(matches!(cids.find("r", "s", "c1"), Known::Placed(s) if s.seq == 1));
        assert!(
            matches!(cids.find("r", "s", "new"), Known::New),
            "all remembered"
        );
        let next = RECENT_CIDS as u64 + 1;
        cids.remember(&room, "s", &format!("c{next}"), Said { seq: next, ts: 0 });
        assert!(
            matches!(cids.find("r", "s", "c1"), Known::Ask),
            "forgotten: ask"
        );
        assert!(matches!(cids.find("r", "s", "c2"), Known::Placed(s) if s.seq == 2));
        assert!(matches!(cids.find("r", "s", "new"), Known::Ask));
    }

    #[test]
    fn a_session_from_an_earlier_run_asks_the_database() {
        let restored: Arc<Mutex<HashSet<String>>> = Arc::default();
        restored.lock().expect("lock").insert("old".into());
        let mut cids = Cids::new(restored);
        cids.remember(&"r".into(), "old", "c1", Said { seq: 9, ts: 0 });
        assert!(matches!(cids.find("r", "old", "c0"), Known::Ask));
    }
}
