//! The rooms that are open: name → actor handle.
//!
//! A room is open while anybody holds its handle (a member's session); the
//! registry's own handle does not count. When the last member leaves, the
//! room retires: its entry is removed, the actor stops once what it was
//! storing is settled, and its history goes back to the store (so
//! `--max-rooms` bounds the rooms open at once, not the names ever used).
//!
//! A std mutex guards the map: it is held only for a lookup, an insert or
//! a removal, never across an `.await`, which is cheaper than an async
//! mutex here. Lookups and retirement both take it, so a handle is never
//! given out for a room that is retiring.

use super::Ports;
use super::{RoomCounters, RoomHandle, RoomLimits};
use crate::names;
use prometheus_client::metrics::histogram::Histogram;
use shared::chat::{ErrorBody, ErrorCode, RoomInfo};
use std::{collections::HashMap, sync::Mutex};

/// Mailbox size of each room actor.
const ROOM_MAILBOX: usize = 4_096;

#[derive(Default)]
struct Open {
    rooms: HashMap<String, RoomHandle>,
    /// Look-alike key ([`names::room_key`]) → the open room's name.
    keys: HashMap<String, String>,
}

impl Open {
    /// The look-alike key of a room that closed.
    fn forget_key(&mut self, name: &str) {
        let key = names::room_key(name);
        if self.keys.get(&key).is_some_and(|n| n == name) {
            self.keys.remove(&key);
        }
    }
}

/// All rooms of this server.
pub struct Rooms {
    open: Mutex<Open>,
    max_rooms: usize,
    fanout: Histogram,
    counters: RoomCounters,
    limits: RoomLimits,
    /// Where rooms store and hear.
    ports: Ports,
    /// Messages each room keeps at hand.
    cache: usize,
}

impl Rooms {
    /// No rooms yet; rooms store and hear through `ports` and record
    /// their fan-out latency in `fanout`.
    pub(crate) fn new(ports: Ports, cache: usize, max_rooms: usize, fanout: Histogram) -> Self {
        Self {
            open: Mutex::new(Open::default()),
            max_rooms,
            fanout,
            counters: RoomCounters::default(),
            limits: RoomLimits::default(),
            ports,
            cache,
        }
    }

    /// Rooms bounded by `limits`, counting in `counters`.
    pub fn with_limits(mut self, limits: RoomLimits, counters: RoomCounters) -> Self {
        self.limits = limits;
        self.counters = counters;
        self
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, Open> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single inserts and removals), so a poisoned lock is still safe.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room with this (validated) name, opened when it is not.
    /// `may_create` is asked only when the room is new to this process
    /// (it spends the creator's budget).
    pub fn get_or_create(
        &self,
        name: &str,
        may_create: impl FnOnce() -> bool,
    ) -> Result<RoomHandle, ErrorBody> {
        let mut open = self.locked();
        if let Some(handle) = open.rooms.get(name) {
            return Ok(handle.clone());
        }
        let key = names::room_key(name);
        if let Some(existing) = open.keys.get(&key) {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("'{name}' looks too much like the room '{existing}'"),
            ));
        }
        if open.rooms.len() >= self.max_rooms {
            return Err(ErrorBody::new(
                ErrorCode::TooManyRooms,
                "the server has as many rooms open as it allows",
            ));
        }
        if !may_create() {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                "too many new rooms from your address; try again in a minute",
            ));
        }
        let handle = RoomHandle::spawn(
            name,
            self.ports.clone(),
            self.cache,
            ROOM_MAILBOX,
            (self.fanout.clone(), self.counters.clone()),
            self.limits,
        );
        open.rooms.insert(name.to_owned(), handle.clone());
        open.keys.insert(key, name.to_owned());
        Ok(handle)
    }

    /// The room with this name, if it is open.
    pub fn get(&self, name: &str) -> Option<RoomHandle> {
        self.locked().rooms.get(name).cloned()
    }

    /// Closes the room if nobody uses it any more (its last member left).
    /// Returns whether it was closed.
    pub fn retire(&self, name: &str) -> bool {
        let mut open = self.locked();
        if !open.rooms.get(name).is_some_and(RoomHandle::is_unused) {
            return false;
        }
        open.rooms.remove(name);
        open.forget_key(name);
        tracing::debug!(room = name, "room closed: no members left");
        true
    }

    /// Closes every room nobody uses (a handle held for a moment when a
    /// member left may have kept one open). Returns how many closed.
    pub fn retire_unused(&self) -> usize {
        let mut open = self.locked();
        let unused: Vec<String> = open
            .rooms
            .iter()
            .filter(|(_, h)| h.is_unused())
            .map(|(n, _)| n.clone())
            .collect();
        for name in &unused {
            open.rooms.remove(name);
            open.forget_key(name);
        }
        unused.len()
    }

    /// Whether the room is open here now.
    pub fn is_open(&self, name: &str) -> bool {
        self.locked().rooms.contains_key(name)
    }

    /// The bus the rooms hear other processes on.
    pub fn bus(&self) -> &dyn crate::log::Bus {
        self.ports.bus.as_ref()
    }

    /// Every open room with its member count, busiest first, at most `max`.
    pub fn list(&self, max: usize) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .locked()
            .rooms
            .values()
            // Private rooms and direct messages are listed to their
            // members only (see `access`), never here.
            .filter(|h| !crate::access::is_private_name(h.name()))
            .map(|h| RoomInfo {
                room: h.name().to_owned(),
                members: h.member_count(),
                title: None,
            })
            .collect();
        rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(max);
        rooms
    }

    /// How many rooms are open.
    pub fn len(&self) -> usize {
        self.locked().rooms.len()
    }

    /// Whether there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
