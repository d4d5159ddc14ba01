//! The memory store (`--in-memory`): each room a [`Ring`] of its latest
//! messages; the last closed rooms are kept for when they open again.

use crate::{
    accounts::MemoryAccounts,
    history::HistoryStore,
    ids::new_epoch,
    log::{Entry, Log, Placed, Read, Refusal, Snapshot, StoreError, check_change},
    ring::Ring,
};
use shared::chat::Msg;
use std::collections::{HashMap, VecDeque};

/// Histories of closed rooms a [`MemoryStore`] keeps, the most recently
/// closed ones (a room that had no members loses its history past this).
pub const RETIRED_ROOMS: usize = 1_000;

/// The memory store's rooms: those open, and the last closed ones.
#[derive(Default)]
struct Rooms {
    open: HashMap<String, Ring>,
    retired: HashMap<String, Ring>,
    /// Retired rooms, oldest closed first.
    order: VecDeque<String>,
}

impl Rooms {
    /// The room's history, brought back from the retired ones or made.
    fn open(&mut self, room: &str, capacity: usize) -> &mut Ring {
        let Self {
            open,
            retired,
            order,
        } = self;
        open.entry(room.to_owned())
            .or_insert_with(|| match retired.remove(room) {
                Some(history) => {
                    order.retain(|r| r != room);
                    history
                }
                None => Ring::new(capacity, new_epoch()),
            })
    }
}

/// In-memory histories of at most `capacity` messages each. A closed
/// room's history is kept for when it opens again (the last
/// [`RETIRED_ROOMS`] closed).
#[derive(Clone)]
pub struct MemoryStore {
    capacity: usize,
    rooms: std::sync::Arc<std::sync::Mutex<Rooms>>,
    accounts: std::sync::Arc<MemoryAccounts>,
    access: std::sync::Arc<crate::access::MemoryAccess>,
}

impl MemoryStore {
    /// Rooms keep their last `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            rooms: Default::default(),
            accounts: Default::default(),
            access: Default::default(),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, Rooms> {
        // Single map operations: a poisoned lock is consistent.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room's epoch, last `seq` and latest `recent` entries (it opens
    /// if it was not).
    fn snapshot_of(&self, room: &str, recent: usize) -> Snapshot {
        let capacity = self.capacity;
        let mut rooms = self.rooms();
        let history = rooms.open(room, capacity);
        Snapshot {
            epoch: history.epoch().to_owned(),
            head: history.last_seq(),
            recent: history.before(u64::MAX, recent),
            members: HashMap::new(),
        }
    }
}

fn ready<T: Send + 'static>(value: Result<T, StoreError>) -> Read<T> {
    Box::pin(std::future::ready(value))
}

impl Log for MemoryStore {
    fn exists(&self, room: &str) -> Read<bool> {
        let found = {
            let rooms = self.rooms();
            rooms
                .open
                .get(room)
                .or_else(|| rooms.retired.get(room))
                .is_some_and(|h| h.last_seq() > 0)
        };
        Box::pin(async move { Ok(found) })
    }

    fn append(
        &self,
        room: &str,
        entry: Entry,
    ) -> tokio::sync::oneshot::Receiver<Result<Placed, StoreError>> {
        let capacity = self.capacity;
        let mut rooms = self.rooms();
        let placed = place(rooms.open(room, capacity), room, entry);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(placed);
        rx
    }

    fn snapshot_now(&self, room: &str, recent: usize) -> Option<Result<Snapshot, StoreError>> {
        Some(Ok(self.snapshot_of(room, recent)))
    }

    fn snapshot(&self, room: &str, recent: usize) -> Read<Snapshot> {
        ready(Ok(self.snapshot_of(room, recent)))
    }

    fn range(&self, room: &str, from: u64, to: u64) -> Read<Vec<Msg>> {
        let capacity = self.capacity;
        let msgs = {
            let mut rooms = self.rooms();
            let history = rooms.open(room, capacity);
            let limit = usize::try_from(to.saturating_add(1).saturating_sub(from)).unwrap_or(0);
            history.before(to.saturating_add(1), limit)
        };
        ready(Ok(msgs.into_iter().filter(|m| m.seq >= from).collect()))
    }

    fn before(&self, room: &str, before: u64, limit: usize) -> Read<Vec<Msg>> {
        let capacity = self.capacity;
        let msgs = self.rooms().open(room, capacity).before(before, limit);
        ready(Ok(msgs))
    }

    fn kept_per_room(&self) -> Option<u64> {
        Some(self.capacity as u64)
    }

    fn retire(&self, room: &str) {
        let mut rooms = self.rooms();
        let Some(history) = rooms.open.remove(room) else {
            return;
        };
        if history.last_seq() == 0 {
            return;
        }
        rooms.retired.insert(room.to_owned(), history);
        rooms.order.push_back(room.to_owned());
        while rooms.order.len() > RETIRED_ROOMS {
            if let Some(old) = rooms.order.pop_front() {
                rooms.retired.remove(&old);
            }
        }
    }
}

impl crate::search::Search for MemoryStore {
    fn search(
        &self,
        query: crate::search::Query,
        scope: crate::search::Scope,
        limit: usize,
    ) -> Read<Vec<Msg>> {
        let mut found: Vec<Msg> = {
            let rooms = self.rooms();
            rooms
                .open
                .iter()
                .chain(rooms.retired.iter())
                .filter(|(room, _)| scope.allows(room))
                .flat_map(|(room, ring)| {
                    ring.before(u64::MAX, usize::MAX)
                        .into_iter()
                        .filter(|m| crate::search::matches(&query, room, m))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        found.sort_by(|a, b| b.ts.cmp(&a.ts).then(b.seq.cmp(&a.seq)));
        found.truncate(limit.min(crate::search::MAX_RESULTS));
        ready(Ok(found))
    }
}

impl HistoryStore for MemoryStore {
    fn accounts(&self) -> Option<std::sync::Arc<dyn crate::accounts::Accounts>> {
        Some(self.accounts.clone())
    }

    fn access(&self) -> Option<std::sync::Arc<dyn crate::access::Access>> {
        Some(self.access.clone())
    }

    fn search(&self) -> Option<std::sync::Arc<dyn crate::search::Search>> {
        Some(std::sync::Arc::new(self.clone()))
    }
}

/// Places `entry` at the next `seq`, or answers where its `(session,
/// cid)` was placed before.
fn place(history: &mut Ring, room: &str, entry: Entry) -> Result<Placed, StoreError> {
    if let (Some(session), Some(cid)) = (&entry.session, &entry.cid)
        && let Some(said) = history.find_cid(session, cid)
    {
        return Ok(Placed {
            seq: said.seq,
            ts: said.ts,
            epoch: history.epoch().to_owned(),
            fresh: false,
        });
    }
    if let Some(change) = &entry.change {
        let Some((target, by)) = history.message(change.of) else {
            return Err(StoreError::Refused(Refusal::NoSuchMessage));
        };
        check_change(target, by, change, entry.author.as_deref(), entry.ts)
            .map_err(StoreError::Refused)?;
    }
    let seq = history.last_seq() + 1;
    let mut msg = Msg::new(
        room.to_owned(),
        history.epoch().to_owned(),
        seq,
        entry.from,
        entry.text,
        entry.ts,
    );
    msg.cid = entry.cid;
    msg.kind = entry.change.map(|c| c.kind);
    msg.of = entry.change.map(|c| c.of);
    msg.reply = entry.reply;
    let ts = msg.ts;
    if msg.kind.is_some() {
        // The message itself changes: a deleted text is gone from here.
        history.apply(&msg);
    }
    // It follows the last one: cannot fail.
    let _ = history.push_by(msg, entry.session.as_deref(), entry.author.as_deref());
    Ok(Placed {
        seq,
        ts,
        epoch: history.epoch().to_owned(),
        fresh: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str, cid: Option<&str>) -> Entry {
        Entry {
            from: "a".into(),
            text: text.into(),
            ts: 1,
            cid: cid.map(Into::into),
            session: Some("s".into()),
            author: Some("s:s".into()),
            change: None,
            reply: None,
        }
    }

    #[test]
    fn the_memory_store_places_entries_and_answers_a_retried_cid() {
        let mut h = Ring::new(10, "e".into());
        let first = place(&mut h, "r", entry("one", Some("c1"))).expect("placed");
        assert_eq!((first.seq, first.fresh), (1, true));
        assert_eq!(
            place(&mut h, "r", entry("two", None)).expect("placed").seq,
            2
        );
        let again = place(&mut h, "r", entry("one", Some("c1"))).expect("placed");
        assert_eq!((again.seq, again.fresh), (1, false));
        assert_eq!(h.last_seq(), 2);
    }

    #[tokio::test]
    async fn a_closed_room_keeps_its_history_for_when_it_opens_again() {
        let store = MemoryStore::new(10);
        let exists = |room: &str| {
            let read = store.exists(room);
            async move { read.await.expect("read") }
        };
        let placed = store
            .append("r", entry("hi", None))
            .try_recv()
            .expect("at once")
            .expect("placed");
        assert_eq!(placed.seq, 1);
        assert!(exists("r").await);
        store.retire("r");
        assert!(exists("r").await, "kept when closed");
        let again = store
            .snapshot_now("r", 10)
            .expect("at once")
            .expect("snapshot");
        assert_eq!((again.epoch, again.head), (placed.epoch, 1));
        assert!(!exists("never").await);
        store.snapshot_now("empty", 1);
        store.retire("empty");
        assert!(!exists("empty").await, "a room that never had a message");
    }
}
