//! Room history behind a small trait, so the store can be swapped.
//!
//! A room actor owns one [`History`] and is its only user, so the trait is
//! plain `&mut self` with no locking. [`MemoryHistory`] is a bounded ring.

use shared::chat::{Msg, Said};
use std::collections::{HashMap, VecDeque};

/// A store failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("history store: {0}")]
pub struct StoreError(pub String);

/// Resolves once an appended message is durable (or could not be stored).
pub type Commit = tokio::sync::oneshot::Receiver<Result<(), StoreError>>;

/// A [`Commit`] that has already resolved.
pub fn committed(result: Result<(), StoreError>) -> Commit {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(result);
    rx
}

/// What a session left behind, for a client that comes back after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedSession {
    /// Last nickname.
    pub nick: String,
    /// Rooms it was in.
    pub rooms: Vec<String>,
}

/// One room's stored messages.
///
/// `append` hands a message over and returns at once; the [`Commit`] says
/// when it is durable. Commits of one room resolve in `seq` order, and a
/// failed one fails every later append until [`History::rewind`].
pub trait History: Send {
    /// Names this unbroken history; changes only when history is lost.
    fn epoch(&self) -> &str;
    /// The latest `seq` handed over (0 when there is none).
    fn last_seq(&self) -> u64;
    /// Hands over the next message (its `seq` is `last_seq() + 1`),
    /// remembering `(session, cid)` when both are given so a retry finds it.
    fn append(&mut self, msg: Msg, session: Option<&str>) -> Commit;
    /// After a failed commit: the next message gets `seq + 1` again.
    fn rewind(&mut self, seq: u64);
    /// Where the message a `(session, cid)` pair already produced was stored.
    fn find_cid(&self, session: &str, cid: &str) -> Option<Said>;
    /// Every stored message after `seq`, or `None` when some of them are
    /// no longer kept, or they are more than `max` messages or `budget`
    /// bytes (see [`crate::limits::msg_bytes`]): recovery is all or nothing,
    /// and bounded.
    fn since(&self, seq: u64, max: usize, budget: usize) -> Option<Vec<Msg>>;
    /// Whether the store can take `bytes` more now (its queue is bounded;
    /// when it is full, a post is refused at once instead of queued).
    fn has_room(&self, _bytes: usize) -> bool {
        true
    }
    /// Up to `limit` stored messages with `seq < before`, oldest first.
    fn before(&self, before: u64, limit: usize) -> Vec<Msg>;
    /// The oldest `seq` `before` can answer for (a cache may hold only the
    /// latest messages).
    fn oldest(&self) -> u64 {
        1
    }
    /// Forgets cached messages older than `cutoff` (ms since the Unix
    /// epoch), for a store that drops them by age elsewhere.
    fn expire(&mut self, _cutoff: i64) {}
}

/// Makes a [`History`] for each room, and keeps sessions when it can.
pub trait HistoryStore: Send + Sync {
    /// Opens (or creates) a room's history.
    fn open(&self, room: &str) -> Result<Box<dyn History>, StoreError>;
    /// A session saved by an earlier run, if the store keeps them.
    fn load_session(&self, _token: &str) -> Option<SavedSession> {
        None
    }
    /// Saves a session's nickname and rooms (best effort).
    fn save_session(&self, _token: &str, _session: &SavedSession) {}
    /// Bytes of messages waiting to be stored.
    fn queued_bytes(&self) -> usize {
        0
    }
    /// A room closed (it had no members left): its history comes back here.
    fn retire(&self, _room: &str, _history: Box<dyn History>) {}
    /// Whether a room has a history here (a `resume` cursor for a room
    /// that does not exist must not create it).
    fn exists(&self, _room: &str) -> bool {
        false
    }
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
}

/// Histories of closed rooms a [`MemoryStore`] keeps, the most recently
/// closed ones (a room that had no members loses its history past this).
pub const RETIRED_ROOMS: usize = 1_000;

/// Closed rooms' histories, oldest closed first.
#[derive(Default)]
struct Retired {
    rooms: HashMap<String, Box<dyn History>>,
    order: VecDeque<String>,
}

/// In-memory histories of at most `capacity` messages each. A closed
/// room's history is kept for when it opens again (the last
/// [`RETIRED_ROOMS`] closed).
#[derive(Clone)]
pub struct MemoryStore {
    capacity: usize,
    retired: std::sync::Arc<std::sync::Mutex<Retired>>,
}

impl MemoryStore {
    /// Rooms keep their last `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            retired: Default::default(),
        }
    }

    fn retired(&self) -> std::sync::MutexGuard<'_, Retired> {
        // Single map operations: a poisoned lock is consistent.
        self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HistoryStore for MemoryStore {
    fn open(&self, room: &str) -> Result<Box<dyn History>, StoreError> {
        let mut retired = self.retired();
        if let Some(history) = retired.rooms.remove(room) {
            retired.order.retain(|r| r != room);
            return Ok(history);
        }
        Ok(Box::new(MemoryHistory::new(self.capacity, new_epoch())))
    }

    fn retire(&self, room: &str, history: Box<dyn History>) {
        if history.last_seq() == 0 {
            return;
        }
        let mut retired = self.retired();
        if retired.rooms.insert(room.to_owned(), history).is_none() {
            retired.order.push_back(room.to_owned());
        }
        while retired.order.len() > RETIRED_ROOMS {
            if let Some(old) = retired.order.pop_front() {
                retired.rooms.remove(&old);
            }
        }
    }

    fn exists(&self, room: &str) -> bool {
        self.retired().rooms.contains_key(room)
    }
}

/// A fresh random epoch name.
pub fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A bounded ring of messages with `cid` deduplication for what it holds.
#[derive(Debug)]
pub struct MemoryHistory {
    epoch: String,
    capacity: usize,
    last_seq: u64,
    ring: VecDeque<(Msg, Option<Box<str>>)>,
    by_cid: HashMap<(Box<str>, Box<str>), u64>,
}

impl MemoryHistory {
    /// An empty history.
    pub fn new(capacity: usize, epoch: String) -> Self {
        Self {
            epoch,
            capacity,
            last_seq: 0,
            ring: VecDeque::new(),
            by_cid: HashMap::new(),
        }
    }

    /// A cache of the latest messages of a history kept elsewhere:
    /// `recent` (contiguous, oldest first) ending at `head`.
    pub fn cache(capacity: usize, epoch: String, recent: Vec<Msg>, head: u64) -> Self {
        let mut ring: VecDeque<(Msg, Option<Box<str>>)> = recent
            .into_iter()
            .filter(|m| m.seq <= head)
            .map(|m| (m, None))
            .collect();
        while ring.len() > capacity {
            ring.pop_front();
        }
        // Only a contiguous run ending at `head` is usable.
        let mut expect = head;
        let mut keep = 0;
        for (m, _) in ring.iter().rev() {
            if m.seq != expect {
                break;
            }
            keep += 1;
            expect = expect.saturating_sub(1);
        }
        let drop = ring.len() - keep;
        ring.drain(..drop);
        Self {
            epoch,
            capacity,
            last_seq: head,
            ring,
            by_cid: HashMap::new(),
        }
    }

    fn first_seq(&self) -> u64 {
        self.ring.front().map_or(self.last_seq + 1, |(m, _)| m.seq)
    }

    fn get(&self, seq: u64) -> Option<&Msg> {
        let index = seq.checked_sub(self.first_seq())?;
        self.ring.get(usize::try_from(index).ok()?).map(|(m, _)| m)
    }
}

impl MemoryHistory {
    fn push(&mut self, msg: Msg, session: Option<&str>) -> Result<(), StoreError> {
        if msg.seq != self.last_seq + 1 {
            return Err(StoreError(format!(
                "seq {} does not follow {}",
                msg.seq, self.last_seq
            )));
        }
        if self.capacity == 0 {
            self.last_seq = msg.seq;
            return Ok(());
        }
        if self.ring.len() == self.capacity
            && let Some((old, Some(old_session))) = self.ring.pop_front()
            && let Some(cid) = old.cid
        {
            self.by_cid.remove(&(old_session, cid.into_boxed_str()));
        }
        let session: Option<Box<str>> = session.map(Into::into);
        if let (Some(s), Some(cid)) = (&session, &msg.cid) {
            self.by_cid
                .insert((s.clone(), cid.as_str().into()), msg.seq);
        }
        self.last_seq = msg.seq;
        self.ring.push_back((msg, session));
        Ok(())
    }
}

impl History for MemoryHistory {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn append(&mut self, msg: Msg, session: Option<&str>) -> Commit {
        committed(self.push(msg, session))
    }

    fn rewind(&mut self, seq: u64) {
        while self.ring.back().is_some_and(|(m, _)| m.seq > seq) {
            self.ring.pop_back();
        }
        self.last_seq = seq.min(self.last_seq);
    }

    fn find_cid(&self, session: &str, cid: &str) -> Option<Said> {
        let seq = *self.by_cid.get(&(Box::from(session), Box::from(cid)))?;
        self.get(seq).map(|m| Said {
            seq: m.seq,
            ts: m.ts,
        })
    }

    fn since(&self, seq: u64, max: usize, budget: usize) -> Option<Vec<Msg>> {
        if seq > self.last_seq || self.last_seq - seq > max as u64 {
            return None;
        }
        if seq.saturating_add(1) < self.first_seq() {
            return None;
        }
        let skip = usize::try_from(seq + 1 - self.first_seq()).ok()?;
        let mut used = 0;
        let mut out = Vec::new();
        for (m, _) in self.ring.iter().skip(skip) {
            used += crate::limits::msg_bytes(m);
            if used > budget {
                return None;
            }
            out.push(m.clone());
        }
        Some(out)
    }

    fn oldest(&self) -> u64 {
        self.first_seq()
    }

    fn expire(&mut self, cutoff: i64) {
        while self.ring.front().is_some_and(|(m, _)| m.ts < cutoff) {
            if let Some((old, Some(session))) = self.ring.pop_front()
                && let Some(cid) = old.cid
            {
                self.by_cid.remove(&(session, cid.into_boxed_str()));
            }
        }
    }

    fn before(&self, before: u64, limit: usize) -> Vec<Msg> {
        let end = before.min(self.last_seq + 1);
        let start = end.saturating_sub(limit as u64).max(self.first_seq());
        (start..end)
            .filter_map(|seq| self.get(seq).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: usize = usize::MAX;
    const ANY: usize = usize::MAX;

    fn msg(seq: u64, cid: Option<&str>) -> Msg {
        Msg {
            room: "r".into(),
            epoch: "e".into(),
            seq,
            from: "a".into(),
            text: format!("m{seq}"),
            ts: 0,
            cid: cid.map(Into::into),
        }
    }

    fn filled(capacity: usize, n: u64) -> MemoryHistory {
        let mut h = MemoryHistory::new(capacity, "e".into());
        for seq in 1..=n {
            let cid = format!("c{seq}");
            h.push(msg(seq, Some(&cid)), Some("s")).expect("append");
        }
        h
    }

    #[test]
    fn ring_keeps_the_latest_and_forgets_their_cids() {
        let h = filled(3, 5);
        assert_eq!(
            h.before(u64::MAX, 10)
                .iter()
                .map(|m| m.seq)
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert!(h.find_cid("s", "c2").is_none());
        assert_eq!(h.find_cid("s", "c4").map(|m| m.seq), Some(4));
        assert!(h.find_cid("other", "c4").is_none());
    }

    #[test]
    fn since_is_all_or_nothing() {
        let h = filled(3, 5);
        assert_eq!(h.since(5, ALL, ANY).map(|v| v.len()), Some(0));
        assert_eq!(
            h.since(3, ALL, ANY)
                .map(|v| v.iter().map(|m| m.seq).collect::<Vec<_>>()),
            Some(vec![4, 5])
        );
        assert_eq!(h.since(2, ALL, ANY).map(|v| v.len()), Some(3));
        assert!(h.since(1, ALL, ANY).is_none(), "message 2 is gone");
        assert!(h.since(6, ALL, ANY).is_none(), "cursor from the future");
        assert!(h.since(2, 2, ANY).is_none(), "three is more than two");
        let one = crate::limits::msg_bytes(&msg(5, Some("c5")));
        assert!(h.since(3, ALL, one).is_none(), "two do not fit one's bytes");
        assert_eq!(h.since(4, ALL, one).map(|v| v.len()), Some(1));
    }

    #[test]
    fn expiry_forgets_the_old_messages_and_their_cids() {
        let mut h = MemoryHistory::new(10, "e".into());
        for seq in 1..=5 {
            let cid = format!("c{seq}");
            let m = Msg {
                ts: i64::try_from(seq).expect("small") * 100,
                ..msg(seq, Some(&cid))
            };
            h.push(m, Some("s")).expect("append");
        }
        h.expire(300);
        assert_eq!(h.oldest(), 3, "ts 100 and 200 are older than 300");
        assert!(h.find_cid("s", "c2").is_none());
        assert_eq!(h.find_cid("s", "c3").map(|m| m.seq), Some(3));
        assert!(h.since(1, ALL, ANY).is_none(), "the gap is no longer whole");
        assert_eq!(h.since(2, ALL, ANY).map(|v| v.len()), Some(3));
        h.expire(i64::MAX);
        assert_eq!((h.oldest(), h.last_seq()), (6, 5), "empty, seq kept");
        assert_eq!(h.since(5, ALL, ANY).map(|v| v.len()), Some(0));
        assert!(h.push(msg(6, None), None).is_ok(), "seq continues");
    }

    #[test]
    fn before_is_exclusive_and_limited() {
        let h = filled(10, 8);
        assert_eq!(
            h.before(5, 2).iter().map(|m| m.seq).collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(h.before(1, 5).len(), 0);
        assert_eq!(
            h.before(100, 3).iter().map(|m| m.seq).collect::<Vec<_>>(),
            [6, 7, 8]
        );
    }

    #[test]
    fn a_cache_keeps_the_contiguous_run_ending_at_head() {
        let recent = vec![msg(3, None), msg(5, None), msg(6, None), msg(7, None)];
        let mut h = MemoryHistory::cache(10, "e".into(), recent, 7);
        assert_eq!(h.last_seq(), 7);
        assert_eq!(h.oldest(), 5, "4 is missing, so 3 is unusable");
        assert_eq!(h.since(4, ALL, ANY).map(|v| v.len()), Some(3));
        assert!(h.since(3, ALL, ANY).is_none());
        assert!(
            h.push(msg(8, None), None).is_ok(),
            "appends continue after head"
        );
        let empty = MemoryHistory::cache(10, "e".into(), Vec::new(), 42);
        assert_eq!((empty.last_seq(), empty.oldest()), (42, 43));
        assert_eq!(empty.since(42, ALL, ANY).map(|v| v.len()), Some(0));
    }

    #[test]
    fn a_closed_room_keeps_its_history_for_when_it_opens_again() {
        let store = MemoryStore::new(10);
        let mut h = store.open("r").expect("open");
        let epoch = h.epoch().to_owned();
        drop(h.append(msg(1, None), None));
        assert!(!store.exists("r"));
        store.retire("r", h);
        assert!(store.exists("r"));
        let again = store.open("r").expect("open");
        assert_eq!((again.epoch(), again.last_seq()), (epoch.as_str(), 1));
        assert!(!store.exists("r"), "taken out while open");
        store.retire("empty", store.open("empty").expect("open"));
        assert!(!store.exists("empty"), "a room that never had a message");
    }

    #[test]
    fn append_refuses_a_gap() {
        let mut h = filled(10, 2);
        assert!(h.push(msg(4, None), None).is_err());
    }
}
