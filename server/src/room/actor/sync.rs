//! Where a room stands: its snapshot from the log (at start, and again
//! after an outage), joins answered from the cache or the log, history
//! pages, and the shared store's health.

use super::{ConnId, Room, Task, json};
use crate::{
    limits::{self, msg_bytes, newest_within},
    log::{Snapshot, StoreError},
    ring::Ring,
};
use shared::{
    Frame,
    chat::{Cursor, ErrorBody, ErrorCode, Health, Msg, PresenceKind, RoomState, RoomStatus},
    event::name,
};
use std::collections::HashMap;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

fn unavailable(what: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unavailable, what)
}

impl Room {
    /// Reads the room's snapshot: at once when the log can (one process),
    /// else as a task.
    pub(super) fn start(&mut self) {
        match self.log.snapshot_now(&self.name, self.capacity) {
            Some(result) => self.snapshot(result),
            None => self.read_snapshot(),
        }
    }

    pub(super) fn read_snapshot(&mut self) {
        if self.reading {
            return;
        }
        self.reading = true;
        let read = self.log.snapshot(&self.name, self.capacity);
        self.spawn_task(async move { Task::Snapshot(read.await) });
    }

    /// A join that must wait for the room's first snapshot.
    pub(super) fn park(
        &mut self,
        conn: ConnId,
        since: Option<Cursor>,
        budget: usize,
        reply: oneshot::Sender<Result<RoomState, ErrorBody>>,
    ) {
        self.parked.push((conn, since, budget, reply));
        self.read_snapshot();
    }

    pub(super) fn snapshot(&mut self, result: Result<Snapshot, StoreError>) {
        self.reading = false;
        let snap = match result {
            Ok(snap) => snap,
            Err(e) => {
                warn!(room = %self.name, error = %e, "cannot read the room's snapshot");
                if !self.ready {
                    // Nobody can be in a room that cannot be read.
                    for (conn, _, _, reply) in std::mem::take(&mut self.parked) {
                        let _ = reply.send(Err(unavailable("the room is unavailable; try again")));
                        self.members.remove(&conn);
                    }
                    self.set_count();
                }
                return;
            }
        };
        let fresh = !self.ready || snap.epoch != self.cache.epoch();
        if fresh {
            if self.ready {
                warn!(room = %self.name, "the room's history was replaced (new epoch)");
            }
            self.cache = Ring::cache(self.capacity, snap.epoch.clone(), snap.recent, snap.head);
            self.delivered = snap.head;
            self.pending
                .retain(|seq, m| *seq > snap.head && m.epoch == snap.epoch);
        }
        self.head = self.head.max(snap.head);
        self.members_from(snap.members);
        self.set_count();
        for (conn, since, budget, reply) in std::mem::take(&mut self.parked) {
            if self.members.contains_key(&conn) {
                self.answer_join(since, budget, reply);
            } else {
                let _ = reply.send(Err(unavailable("left before the room was ready")));
            }
        }
        self.drain();
    }

    /// The members a snapshot lists: others' are taken as they are; ours
    /// are put right where the shared list missed an update (made while
    /// the store was away, or before the room was ready).
    fn members_from(&mut self, listed: HashMap<String, String>) {
        let mine = format!("{}:", self.bus.node());
        let mut remote = HashMap::new();
        let mut registered: HashMap<ConnId, String> = HashMap::new();
        for (key, nick) in listed {
            match key.strip_prefix(&mine) {
                Some(conn) => match conn.parse::<ConnId>() {
                    Ok(conn) if self.members.contains_key(&conn) => {
                        registered.insert(conn, nick);
                    }
                    _ => self.bus.forget_member(&self.name, key, &nick),
                },
                None => {
                    remote.insert(key, nick);
                }
            }
        }
        for (conn, member) in &self.members {
            if registered.get(conn) != Some(&member.nick) {
                self.bus
                    .presence(&self.name, *conn, PresenceKind::Join, &member.nick, None);
            }
        }
        let before = std::mem::replace(&mut self.remote, remote);
        if std::mem::replace(&mut self.ready, true) {
            // Tell local members what changed while updates were lost.
            let after = self.remote.clone();
            for (key, nick) in &before {
                if !after.contains_key(key) {
                    self.presence(nick, PresenceKind::Leave, None, None);
                }
            }
            for (key, nick) in &after {
                match before.get(key) {
                    None => self.presence(nick, PresenceKind::Join, None, None),
                    Some(old) if old != nick => {
                        self.presence(nick, PresenceKind::Rename, Some(old.clone()), None);
                    }
                    Some(_) => {}
                }
            }
        } else {
            debug!(room = %self.name, seq = self.delivered, "room ready");
        }
    }

    /// Messages up to the last delivered one (never one still in flight),
    /// the newest that fit in `budget` bytes.
    fn cached_before(&self, before: u64, limit: usize, budget: usize) -> Vec<Msg> {
        newest_within(
            self.cache.before(before.min(self.delivered + 1), limit),
            budget,
        )
    }

    /// The room's state for a joining member: exactly what it missed
    /// since `since` if the cache holds it and it is within the recovery
    /// bounds (`--max-recovery` messages, `budget` bytes), else the latest
    /// page.
    fn state(&self, since: Option<Cursor>, budget: usize) -> RoomState {
        let epoch = self.cache.epoch().to_owned();
        let max = self.limits.max_recovery;
        let recovered = since
            .filter(|c| c.epoch == epoch && c.seq <= self.delivered)
            .filter(|c| self.delivered - c.seq <= max as u64)
            .and_then(|c| self.cache.since(c.seq, max, budget))
            .filter(|missed| missed.iter().map(msg_bytes).sum::<usize>() <= budget);
        let (history, recovered) = match recovered {
            Some(missed) => (missed, true),
            None => (
                self.cached_before(u64::MAX, limits::JOIN_HISTORY, budget),
                false,
            ),
        };
        RoomState {
            room: self.name.to_string(),
            epoch,
            seq: self.delivered,
            members: self.members_sorted(),
            history,
            recovered,
            title: None,
            role: None,
        }
    }

    /// Answers a join with the room's state. A cursor older than the cache
    /// is recovered from the log (a task reads it; `msg`s delivered
    /// meanwhile have higher `seq`s, which clients keep).
    pub(super) fn answer_join(
        &mut self,
        since: Option<Cursor>,
        budget: usize,
        reply: oneshot::Sender<Result<RoomState, ErrorBody>>,
    ) {
        self.expire();
        let max = self.limits.max_recovery;
        let from_log = since.as_ref().is_some_and(|cursor| {
            cursor.epoch == self.cache.epoch()
                && cursor.seq < self.delivered
                && self.delivered - cursor.seq <= max as u64
                && cursor.seq + 1 < self.cache.oldest()
        });
        let cursor = match since {
            Some(cursor) if from_log => cursor,
            since => {
                let _ = reply.send(Ok(self.state(since, budget)));
                return;
            }
        };
        // What the client gets if the log no longer has the gap (or it does
        // not fit the reply).
        let fallback = self.state(None, budget);
        let to = fallback.seq;
        let read = self.log.range(&self.name, cursor.seq + 1, to);
        tokio::spawn(async move {
            let state = match read.await {
                Ok(missed)
                    if missed.len() as u64 == to - cursor.seq
                        && missed.first().is_some_and(|m| m.seq == cursor.seq + 1)
                        && missed.iter().map(msg_bytes).sum::<usize>() <= budget =>
                {
                    RoomState {
                        history: missed,
                        recovered: true,
                        ..fallback
                    }
                }
                _ => fallback,
            };
            let _ = reply.send(Ok(state));
        });
    }

    /// `history`: from the cache when it reaches back far enough, else
    /// from the log (a task; the room goes on meanwhile).
    pub(super) fn history_page(
        &mut self,
        before: u64,
        limit: usize,
        budget: usize,
        reply: oneshot::Sender<Result<Vec<Msg>, ErrorBody>>,
    ) {
        self.expire();
        let end = before.min(self.delivered + 1);
        let covered = end.saturating_sub(limit as u64).max(1) >= self.cache.oldest();
        if covered || !self.ready {
            let _ = reply.send(Ok(self.cached_before(end, limit, budget)));
            return;
        }
        let cached = self.cached_before(end, limit, budget);
        let read = self.log.before(&self.name, end, limit);
        tokio::spawn(async move {
            let page = match read.await {
                Ok(page) => newest_within(page, budget),
                Err(_) => cached,
            };
            let _ = reply.send(Ok(page));
        });
    }

    /// The shared store became reachable (`true`) or not.
    pub(super) fn health(&mut self, ok: bool) {
        if self.degraded != ok {
            return;
        }
        self.degraded = !ok;
        info!(room = %self.name, degraded = !ok, "room status");
        let frame = Frame::notify(
            name::ROOM_STATUS,
            json(&RoomStatus {
                room: self.name.to_string(),
                state: if ok { Health::Ok } else { Health::Degraded },
            }),
        )
        .encode();
        self.deliver(None, |m| m.chat_client.then(|| frame.clone()));
        if ok {
            self.read_snapshot();
        }
    }
}
