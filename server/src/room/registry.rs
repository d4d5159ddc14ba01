//! The rooms that exist: name → actor handle.
//!
//! A std mutex guards the map: it is held only for a lookup or an insert,
//! never across an `.await`, which is cheaper than an async mutex here.

use super::RoomHandle;
use crate::{cluster::Cluster, history::HistoryStore};
use prometheus_client::metrics::histogram::Histogram;
use shared::chat::{ErrorBody, ErrorCode, RoomInfo};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// Mailbox size of each room actor.
const ROOM_MAILBOX: usize = 4_096;

/// All rooms of this server.
pub struct Rooms {
    map: Mutex<HashMap<String, RoomHandle>>,
    store: Arc<dyn HistoryStore>,
    max_rooms: usize,
    fanout: Histogram,
    /// Cluster mode: the cluster, and how many messages each room caches.
    cluster: Option<(Arc<Cluster>, usize)>,
}

impl Rooms {
    /// No rooms yet; histories come from `store`; rooms record their
    /// fan-out latency in `fanout`.
    pub fn new(store: Arc<dyn HistoryStore>, max_rooms: usize, fanout: Histogram) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            store,
            max_rooms,
            fanout,
            cluster: None,
        }
    }

    /// Rooms that live in a cluster: their history is in Redis, and each
    /// caches its latest `cache` messages.
    pub fn clustered(mut self, cluster: Arc<Cluster>, cache: usize) -> Self {
        self.cluster = Some((cluster, cache));
        self
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoomHandle>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single inserts), so a poisoned lock is still safe to use.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room with this (validated) name, created when missing.
    pub fn get_or_create(&self, name: &str) -> Result<RoomHandle, ErrorBody> {
        let mut map = self.locked();
        if let Some(handle) = map.get(name) {
            return Ok(handle.clone());
        }
        if map.len() >= self.max_rooms {
            return Err(ErrorBody::new(
                ErrorCode::TooManyRooms,
                "the server has as many rooms as it allows",
            ));
        }
        let history: Box<dyn crate::history::History> = match &self.cluster {
            // Filled from Redis when the actor starts.
            Some((_, cache)) => Box::new(crate::history::MemoryHistory::new(*cache, String::new())),
            None => self.store.open(name).map_err(|e| {
                tracing::error!(room = name, error = %e, "could not open room history");
                ErrorBody::new(ErrorCode::Unavailable, "room history is unavailable")
            })?,
        };
        let handle = RoomHandle::spawn(
            name,
            history,
            ROOM_MAILBOX,
            self.fanout.clone(),
            self.cluster.clone(),
        );
        map.insert(name.to_owned(), handle.clone());
        Ok(handle)
    }

    /// The room with this name, if it exists.
    pub fn get(&self, name: &str) -> Option<RoomHandle> {
        self.locked().get(name).cloned()
    }

    /// Every room with its member count, busiest first.
    pub fn list(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .locked()
            .values()
            .map(|h| RoomInfo {
                room: h.name().to_owned(),
                members: h.member_count(),
            })
            .collect();
        rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.room.cmp(&b.room)));
        rooms
    }

    /// How many rooms exist.
    pub fn len(&self) -> usize {
        self.locked().len()
    }

    /// Whether there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
