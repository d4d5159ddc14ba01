//! An in-memory stand-in for what Redis is to cluster mode: one log that
//! several "processes" in one address space share, and the bus between
//! them. It lets the multi-process logic of the room pipeline be tested
//! without Redis, the way socketioxide's local adapter and Centrifugo's
//! memory broker do; the test can drop publications and announce heads to
//! show how rooms recover.
//!
//! Each process gets a [`HubNode`]: a [`Log`] (appends go to the shared
//! store and are published to every process, this one included, as Redis's
//! append script does) and a [`Bus`] (presence and typing to the others).

use crate::{
    ids::ConnId,
    log::{Bus, BusEvent, Entry, Log, Placed, Read, RemotePresence, Snapshot, StoreError},
    memory::MemoryStore,
};
use shared::chat::{Msg, PresenceKind};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};
use tokio::sync::{mpsc, oneshot};

/// What every process shares.
#[derive(Default)]
struct Shared {
    /// Each process's rooms: node → room → where its events go.
    subscribers: HashMap<String, HashMap<Arc<str>, mpsc::WeakSender<BusEvent>>>,
    /// Members on every process: room → `{node}:{conn}` → nick.
    members: HashMap<String, HashMap<String, String>>,
}

/// The shared log and bus.
#[derive(Clone)]
pub struct Hub {
    store: MemoryStore,
    shared: Arc<Mutex<Shared>>,
    /// Publications of entries still to drop (a lossy pub/sub).
    drop_next: Arc<AtomicUsize>,
}

impl Hub {
    /// A hub whose rooms keep their last `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            store: MemoryStore::new(capacity),
            shared: Arc::default(),
            drop_next: Arc::default(),
        }
    }

    /// The process called `node`.
    pub fn node(&self, node: &str) -> HubNode {
        HubNode {
            hub: self.clone(),
            node: node.to_owned(),
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        // Single map operations: a poisoned lock is consistent.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `n` publications of entries are lost on their way to
    /// every process (the entries stay in the log).
    pub fn drop_publications(&self, n: usize) {
        self.drop_next.store(n, Ordering::Release);
    }

    /// Tells every process's room its log's head, as cluster mode does
    /// every second (a room that missed a publication reads the gap back).
    pub fn announce_heads(&self) {
        let rooms: Vec<(Arc<str>, mpsc::WeakSender<BusEvent>)> = self
            .shared()
            .subscribers
            .values()
            .flat_map(|rooms| rooms.iter().map(|(r, tx)| (r.clone(), tx.clone())))
            .collect();
        for (room, tx) in rooms {
            let head = self
                .store
                .snapshot_now(&room, 0)
                .and_then(Result::ok)
                .map_or(0, |s| s.head);
            if let Some(tx) = tx.upgrade() {
                let _ = tx.try_send(BusEvent::Head(head));
            }
        }
    }

    /// Sends `event()` to the room on every process (but `except`).
    fn publish(&self, room: &str, except: Option<&str>, event: impl Fn() -> BusEvent) {
        let targets: Vec<mpsc::WeakSender<BusEvent>> = self
            .shared()
            .subscribers
            .iter()
            .filter(|(node, _)| Some(node.as_str()) != except)
            .filter_map(|(_, rooms)| rooms.get(room).cloned())
            .collect();
        for tx in targets {
            if let Some(tx) = tx.upgrade() {
                let _ = tx.try_send(event());
            }
        }
    }
}

/// One process's view of the hub.
#[derive(Clone)]
pub struct HubNode {
    hub: Hub,
    node: String,
}

impl Log for HubNode {
    fn append(&self, room: &str, entry: Entry) -> oneshot::Receiver<Result<Placed, StoreError>> {
        let (from, text, cid, change, reply) = (
            entry.from.clone(),
            entry.text.clone(),
            entry.cid.clone(),
            entry.change,
            entry.reply,
        );
        let mut placed = self.hub.store.append(room, entry);
        let result = placed.try_recv().unwrap_or(Err(StoreError::Stopped));
        if let Ok(p) = &result
            && p.fresh
        {
            let lost = self
                .hub
                .drop_next
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if !lost {
                let mut msg = Msg::new(room.to_owned(), p.epoch.clone(), p.seq, from, text, p.ts);
                msg.cid = cid;
                msg.kind = change.map(|c| c.kind);
                msg.of = change.map(|c| c.of);
                msg.reply = reply;
                self.hub
                    .publish(room, None, || BusEvent::Entry(msg.clone()));
            }
        }
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(result);
        rx
    }

    fn snapshot(&self, room: &str, recent: usize) -> Read<Snapshot> {
        let snapshot = self.hub.store.snapshot(room, recent);
        let members = self
            .hub
            .shared()
            .members
            .get(room)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move {
            let mut snapshot = snapshot.await?;
            snapshot.members = members;
            Ok(snapshot)
        })
    }

    fn range(&self, room: &str, from: u64, to: u64) -> Read<Vec<Msg>> {
        self.hub.store.range(room, from, to)
    }

    fn before(&self, room: &str, before: u64, limit: usize) -> Read<Vec<Msg>> {
        self.hub.store.before(room, before, limit)
    }

    fn kept_per_room(&self) -> Option<u64> {
        self.hub.store.kept_per_room()
    }
}

impl Bus for HubNode {
    fn carries(&self) -> bool {
        true
    }

    fn node(&self) -> &str {
        &self.node
    }

    fn subscribe(&self, room: Arc<str>, to: mpsc::WeakSender<BusEvent>) {
        self.hub
            .shared()
            .subscribers
            .entry(self.node.clone())
            .or_default()
            .insert(room, to);
    }

    fn unsubscribe(&self, room: &str) {
        if let Some(rooms) = self.hub.shared().subscribers.get_mut(&self.node)
            && rooms.get(room).is_some_and(|tx| tx.strong_count() == 0)
        {
            rooms.remove(room);
        }
    }

    fn presence(
        &self,
        room: &str,
        conn: ConnId,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        let key = format!("{}:{conn}", self.node);
        {
            let mut shared = self.hub.shared();
            let members = shared.members.entry(room.to_owned()).or_default();
            match kind {
                PresenceKind::Leave => {
                    members.remove(&key);
                }
                PresenceKind::Join | PresenceKind::Rename => {
                    members.insert(key.clone(), nick.to_owned());
                }
            }
        }
        let event = RemotePresence {
            node: self.node.clone(),
            key,
            kind,
            nick: nick.to_owned(),
            old,
        };
        self.hub
            .publish(room, Some(&self.node), || BusEvent::Presence(event.clone()));
    }

    fn forget_member(&self, room: &str, key: String, _nick: &str) {
        if let Some(members) = self.hub.shared().members.get_mut(room) {
            members.remove(&key);
        }
    }

    fn typing(&self, room: &str, nick: &str, on: bool) {
        let (node, nick) = (self.node.clone(), nick.to_owned());
        self.hub
            .publish(room, Some(&self.node), || BusEvent::Typing {
                node: node.clone(),
                nick: nick.clone(),
                on,
            });
    }

    fn removed(&self, room: &str, removal: &crate::log::Removal) {
        self.hub
            .publish(room, Some(&self.node), || BusEvent::Remove(removal.clone()));
    }
}
