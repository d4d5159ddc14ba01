//! The room actor in cluster mode: `seq` comes from Redis, messages from
//! every process arrive on the room's channel (or are read back from its
//! stream), and each is delivered here once, in `seq` order.

use super::{Reply, Room, json, now_ms};
use crate::{
    cluster::{Appended, Cluster, Remote, Snapshot},
    history::{MemoryHistory, StoreError},
    room::{Command, ConnId, Post},
};
use shared::{
    Frame,
    chat::{
        Cursor, ErrorBody, ErrorCode, Health, Msg, PresenceKind, RoomState, RoomStatus, Said,
        TypingOut,
    },
    event::name,
};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::Instant,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// How a room is wired into the cluster (from [`crate::room::RoomHandle::spawn`]).
pub(crate) struct Clustered {
    pub cluster: Arc<Cluster>,
    /// The room's own mailbox, for the answers of the tasks it starts.
    pub me: mpsc::WeakSender<Command>,
    /// Messages the room caches for joins and recovery.
    pub capacity: usize,
}

/// An append in flight, in the order posted.
pub(super) type AppendResult = oneshot::Receiver<Result<Appended, StoreError>>;

/// A join waiting for the room's first snapshot: who, from where, within
/// how many bytes.
type Parked = (
    ConnId,
    Option<Cursor>,
    usize,
    oneshot::Sender<Result<RoomState, ErrorBody>>,
);

struct Appending {
    session: Option<String>,
    cid: Option<String>,
    from: String,
    text: String,
    received: Instant,
    replies: Vec<Reply>,
}

/// What a clustered room knows beyond its local members.
pub(super) struct State {
    pub cluster: Arc<Cluster>,
    me: mpsc::WeakSender<Command>,
    capacity: usize,
    /// The state was read from Redis at least once.
    pub ready: bool,
    /// A snapshot is being read.
    reading: bool,
    degraded: bool,
    /// Members on other processes: `{node}:{conn}` → nick.
    pub remote: HashMap<String, String>,
    /// Messages after `delivered` that arrived early.
    pending: BTreeMap<u64, Msg>,
    /// Acknowledgements waiting for their message to be delivered here.
    acks: BTreeMap<u64, Vec<(Reply, Said)>>,
    appending: VecDeque<Appending>,
    /// A stream read is in flight.
    fetching: bool,
    /// The highest `seq` Redis is known to have.
    head: u64,
    /// When local posts arrived, for the fan-out latency metric.
    posted: HashMap<u64, Instant>,
    /// Joins waiting for the first snapshot.
    parked: Vec<Parked>,
}

impl State {
    pub(super) fn new(c: Clustered) -> Self {
        Self {
            cluster: c.cluster,
            me: c.me,
            capacity: c.capacity,
            ready: false,
            reading: false,
            degraded: false,
            remote: HashMap::new(),
            pending: BTreeMap::new(),
            acks: BTreeMap::new(),
            appending: VecDeque::new(),
            fetching: false,
            head: 0,
            posted: HashMap::new(),
            parked: Vec::new(),
        }
    }

    /// Runs `work` as a task and sends its result to the room.
    fn ask<F>(&self, work: F)
    where
        F: std::future::Future<Output = Command> + Send + 'static,
    {
        let me = self.me.clone();
        tokio::spawn(async move {
            let cmd = work.await;
            if let Some(tx) = me.upgrade() {
                let _ = tx.send(cmd).await;
            }
        });
    }
}

fn unavailable(what: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unavailable, what)
}

impl Room {
    /// Cluster mode: reads the room's state from Redis.
    pub(super) fn start(&mut self) {
        self.read_snapshot();
    }

    fn read_snapshot(&mut self) {
        let name = self.name.clone();
        let Some(c) = &mut self.cluster else { return };
        if c.reading {
            return;
        }
        c.reading = true;
        let cluster = c.cluster.clone();
        let capacity = c.capacity;
        c.ask(async move { Command::Snapshot(cluster.snapshot(&name, capacity).await) });
    }

    /// Answers a join with the room's state. In cluster mode a cursor older
    /// than the cache is recovered from the room's stream (a task reads it;
    /// `msg`s delivered meanwhile have higher `seq`s, which clients keep).
    pub(super) fn answer_join(
        &mut self,
        since: Option<Cursor>,
        budget: usize,
        reply: oneshot::Sender<Result<RoomState, ErrorBody>>,
    ) {
        let max = self.limits.max_recovery;
        let from_stream = match (&self.cluster, &since) {
            (Some(c), Some(cursor)) => {
                c.ready
                    && cursor.epoch == self.history.epoch()
                    && cursor.seq < self.delivered
                    && self.delivered - cursor.seq <= max as u64
                    && cursor.seq + 1 < self.history.oldest()
            }
            _ => false,
        };
        let cursor = match since {
            Some(cursor) if from_stream => cursor,
            since => {
                let _ = reply.send(Ok(self.state(since, budget)));
                return;
            }
        };
        let Some(c) = &self.cluster else { return };
        // What the client gets if the stream no longer has the gap (or it
        // does not fit the reply).
        let fallback = self.state(None, budget);
        let cluster = c.cluster.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            let to = fallback.seq;
            let state = match cluster.range(&name, cursor.seq + 1, to).await {
                Ok(missed)
                    if missed.len() as u64 == to - cursor.seq
                        && missed.first().is_some_and(|m| m.seq == cursor.seq + 1)
                        && missed.iter().map(crate::limits::msg_bytes).sum::<usize>() <= budget =>
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

    /// A join that must wait for the room's first snapshot.
    pub(super) fn park(
        &mut self,
        conn: ConnId,
        since: Option<Cursor>,
        budget: usize,
        reply: oneshot::Sender<Result<RoomState, ErrorBody>>,
    ) {
        if let Some(c) = &mut self.cluster {
            c.parked.push((conn, since, budget, reply));
        }
        self.read_snapshot();
    }

    pub(super) fn snapshot(&mut self, result: Result<Snapshot, StoreError>) {
        let Some(c) = &mut self.cluster else { return };
        c.reading = false;
        let snap = match result {
            Ok(snap) => snap,
            Err(e) => {
                warn!(room = %self.name, error = %e, "cannot read the room from redis");
                if !c.ready {
                    // Nobody can be in a room this process cannot read.
                    let parked = std::mem::take(&mut c.parked);
                    for (conn, _, _, reply) in parked {
                        let _ = reply.send(Err(unavailable("the room is unavailable; try again")));
                        self.members.remove(&conn);
                    }
                    self.set_count();
                }
                return;
            }
        };
        let mine = format!("{}:", c.cluster.node());
        let fresh = !c.ready || snap.epoch != self.history.epoch();
        if fresh {
            if c.ready {
                warn!(room = %self.name, "the room's history in redis was replaced (new epoch)");
            }
            self.history = Box::new(MemoryHistory::cache(
                c.capacity,
                snap.epoch.clone(),
                snap.recent,
                snap.head,
            ));
            self.delivered = snap.head;
            c.pending
                .retain(|seq, m| *seq > snap.head && m.epoch == snap.epoch);
        }
        c.head = c.head.max(snap.head);
        // Members: others from Redis, ours from here (updates dropped while
        // Redis was away, or made before the room was ready, are put right
        // and published).
        let mut remote = HashMap::new();
        let mut registered: HashMap<ConnId, String> = HashMap::new();
        for (key, nick) in snap.members {
            match key.strip_prefix(&mine) {
                Some(conn) => match conn.parse::<ConnId>() {
                    Ok(conn) if self.members.contains_key(&conn) => {
                        registered.insert(conn, nick);
                    }
                    _ => {
                        c.cluster
                            .presence_by_key(&self.name, key, PresenceKind::Leave, &nick, None)
                    }
                },
                None => {
                    remote.insert(key, nick);
                }
            }
        }
        for (conn, member) in &self.members {
            if registered.get(conn) != Some(&member.nick) {
                c.cluster
                    .presence(&self.name, *conn, PresenceKind::Join, &member.nick, None);
            }
        }
        let before = std::mem::replace(&mut c.remote, remote);
        let was_ready = std::mem::replace(&mut c.ready, true);
        let parked = std::mem::take(&mut c.parked);
        if was_ready {
            // Tell local members what changed while updates were lost.
            let after = c.remote.clone();
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
            debug!(room = %self.name, seq = self.delivered, "room read from redis");
        }
        self.set_count();
        for (conn, since, budget, reply) in parked {
            if self.members.contains_key(&conn) {
                self.answer_join(since, budget, reply);
            } else {
                let _ = reply.send(Err(unavailable("left before the room was ready")));
            }
        }
        self.drain();
    }

    /// Cluster mode: hands a post to Redis (which gives it its `seq`).
    pub(super) fn post_clustered(&mut self, post: Post, reply: Option<Reply>) {
        let name = self.name.clone();
        let Some(c) = &mut self.cluster else { return };
        if !c.ready || c.degraded || !c.cluster.healthy() {
            if let Some(reply) = reply {
                let _ = reply.send(Err(unavailable(
                    "the room is degraded (its shared store is unreachable); try again",
                )));
            }
            return;
        }
        if let (Some(session), Some(cid)) = (&post.session, &post.cid)
            && let Some(entry) = c
                .appending
                .iter_mut()
                .find(|e| e.session.as_ref() == Some(session) && e.cid.as_ref() == Some(cid))
        {
            // A retry of a message still being stored waits for the same answer.
            entry.replies.extend(reply);
            return;
        }
        let key = match (&post.session, &post.cid) {
            (Some(s), Some(cid)) => Some((s.clone(), cid.clone())),
            _ => None,
        };
        let ts = now_ms();
        let rx = c.cluster.append(name, &post.from, &post.text, ts, key);
        c.appending.push_back(Appending {
            session: post.session,
            cid: post.cid,
            from: post.from,
            text: post.text,
            received: post.received,
            replies: reply.into_iter().collect(),
        });
        self.appends.push_back(rx);
    }

    /// The oldest append in flight was answered.
    pub(super) fn appended(
        &mut self,
        result: Result<Result<Appended, StoreError>, oneshot::error::RecvError>,
    ) {
        let name = self.name.clone();
        let Some(c) = &mut self.cluster else { return };
        let Some(entry) = c.appending.pop_front() else {
            return;
        };
        let result = result.unwrap_or_else(|_| Err(StoreError("redis writer stopped".into())));
        match result {
            Ok(done) => {
                let said = Said {
                    seq: done.seq,
                    ts: done.ts,
                };
                if done.fresh && done.seq > self.delivered && done.epoch == self.history.epoch() {
                    c.posted.insert(done.seq, entry.received);
                    c.pending.entry(done.seq).or_insert(Msg {
                        room: name.to_string(),
                        epoch: done.epoch,
                        seq: done.seq,
                        from: entry.from,
                        text: entry.text,
                        ts: done.ts,
                        cid: entry.cid,
                    });
                }
                c.head = c.head.max(done.seq);
                if done.seq <= self.delivered {
                    for reply in entry.replies {
                        let _ = reply.send(Ok(said));
                    }
                } else {
                    let waiting = c.acks.entry(done.seq).or_default();
                    waiting.extend(entry.replies.into_iter().map(|r| (r, said)));
                }
                self.drain();
            }
            Err(e) => {
                debug!(room = %self.name, error = %e, "append failed");
                for reply in entry.replies {
                    let _ = reply.send(Err(unavailable(
                        "the message could not be stored (shared store unreachable); try again",
                    )));
                }
            }
        }
    }

    /// Delivers what follows `delivered` without a gap; reads a gap back
    /// from the stream.
    fn drain(&mut self) {
        loop {
            let next = self.delivered + 1;
            let Some(c) = &mut self.cluster else { return };
            // Anything at or below `delivered` is a duplicate.
            while let Some(entry) = c.pending.first_entry() {
                if *entry.key() > self.delivered {
                    break;
                }
                entry.remove();
            }
            let Some(msg) = c.pending.remove(&next) else {
                break;
            };
            let received = c.posted.remove(&next);
            self.deliver_msg(msg, received);
        }
        let Some(c) = &mut self.cluster else { return };
        let done: Vec<u64> = c.acks.range(..=self.delivered).map(|(s, _)| *s).collect();
        for seq in done {
            for (reply, said) in c.acks.remove(&seq).unwrap_or_default() {
                let _ = reply.send(Ok(said));
            }
        }
        let wanted = c
            .pending
            .first_key_value()
            .map(|(seq, _)| seq - 1)
            .unwrap_or(0)
            .max(c.head);
        if wanted > self.delivered {
            self.fetch(self.delivered + 1, wanted);
        }
    }

    fn deliver_msg(&mut self, msg: Msg, received: Option<Instant>) {
        let seq = msg.seq;
        let (rich, seed) = self.msg_frames(&msg);
        // The cache takes every message in order; it cannot fail.
        drop(self.history.append(msg, None));
        self.delivered = seq;
        self.deliver(None, |m| {
            if m.rich {
                Some(rich.clone())
            } else {
                seed.clone()
            }
        });
        if let Some(at) = received {
            self.fanout.observe(at.elapsed().as_secs_f64());
        }
    }

    fn fetch(&mut self, from: u64, to: u64) {
        let name = self.name.clone();
        let Some(c) = &mut self.cluster else { return };
        if c.fetching || !c.ready {
            return;
        }
        c.fetching = true;
        let cluster = c.cluster.clone();
        // Bounded reads: a long gap is read in pieces.
        let to = to.min(from + 999);
        c.ask(async move {
            Command::Fetched {
                from,
                result: cluster.range(&name, from, to).await,
            }
        });
    }

    pub(super) fn fetched(&mut self, from: u64, result: Result<Vec<Msg>, StoreError>) {
        let Some(c) = &mut self.cluster else { return };
        c.fetching = false;
        match result {
            Ok(msgs) => {
                let epoch = self.history.epoch().to_owned();
                let first = msgs.first().map(|m| m.seq);
                for msg in msgs {
                    if msg.seq > self.delivered && msg.epoch == epoch {
                        c.pending.entry(msg.seq).or_insert(msg);
                    }
                }
                if from == self.delivered + 1 && first != Some(from) {
                    // The stream no longer has `from`: trimmed past it. Skip
                    // to what it has (clients see the jump and reload).
                    let skip_to = first.or_else(|| c.pending.first_key_value().map(|(s, _)| *s));
                    if let Some(to) = skip_to {
                        warn!(room = %self.name, from, to, "messages were trimmed before this process read them");
                        self.history =
                            Box::new(MemoryHistory::cache(c.capacity, epoch, Vec::new(), to - 1));
                        self.delivered = to - 1;
                    }
                }
                self.drain();
            }
            Err(e) => {
                debug!(room = %self.name, error = %e, "cannot read the stream; retrying with the next head")
            }
        }
    }

    /// The head `seq` in Redis, read every second.
    pub(super) fn head(&mut self, head: u64) {
        let Some(c) = &mut self.cluster else { return };
        if !c.ready {
            self.read_snapshot();
            return;
        }
        c.head = c.head.max(head);
        if let Some(cutoff) = c.cluster.expiry_cutoff() {
            self.history.expire(cutoff);
        }
        if c.head > self.delivered {
            self.drain();
        }
    }

    pub(super) fn remote(&mut self, remote: Remote) {
        let Some(c) = &mut self.cluster else { return };
        match remote {
            Remote::Msg(msg) => {
                if msg.seq > self.delivered && c.ready && msg.epoch == self.history.epoch() {
                    c.head = c.head.max(msg.seq);
                    c.pending.entry(msg.seq).or_insert(msg);
                    self.drain();
                }
            }
            Remote::Presence(p) => {
                if p.node == c.cluster.node() {
                    return;
                }
                let was_here = self.nick_present(&p.nick);
                let Some(c) = &mut self.cluster else { return };
                match p.kind {
                    PresenceKind::Join | PresenceKind::Rename => {
                        let old = c.remote.insert(p.key, p.nick.clone());
                        self.set_count();
                        match old {
                            // One session on two processes (it moved before
                            // its old process was reaped) is one member.
                            None if was_here => {}
                            None => self.presence(&p.nick, PresenceKind::Join, None, None),
                            Some(old) if old != p.nick => {
                                self.presence(&p.nick, PresenceKind::Rename, Some(old), None);
                            }
                            Some(_) => {}
                        }
                    }
                    PresenceKind::Leave => {
                        if c.remote.remove(&p.key).is_some() {
                            self.set_count();
                            if !self.nick_present(&p.nick) {
                                self.presence(&p.nick, PresenceKind::Leave, None, None);
                            }
                        }
                    }
                }
            }
            Remote::Typing(t) => {
                if t.node == c.cluster.node() {
                    return;
                }
                let frame = Frame::notify(
                    name::TYPING,
                    json(&TypingOut {
                        room: self.name.to_string(),
                        nick: t.nick,
                        on: t.on,
                    }),
                )
                .encode();
                self.deliver(None, |m| m.rich.then(|| frame.clone()));
            }
        }
    }

    /// Whether somebody in the room (here or elsewhere) goes by `nick`.
    fn nick_present(&self, nick: &str) -> bool {
        self.members.values().any(|m| m.nick == nick)
            || self
                .cluster
                .as_ref()
                .is_some_and(|c| c.remote.values().any(|n| n == nick))
    }

    pub(super) fn health(&mut self, ok: bool) {
        let Some(c) = &mut self.cluster else { return };
        if c.degraded != ok {
            return;
        }
        c.degraded = !ok;
        info!(room = %self.name, degraded = !ok, "room status");
        let frame = Frame::notify(
            name::ROOM_STATUS,
            json(&RoomStatus {
                room: self.name.to_string(),
                state: if ok { Health::Ok } else { Health::Degraded },
            }),
        )
        .encode();
        self.deliver(None, |m| m.rich.then(|| frame.clone()));
        if ok {
            self.read_snapshot();
        }
    }

    pub(super) fn resync(&mut self) {
        self.read_snapshot();
    }

    /// Tells the other processes about a local presence change.
    pub(super) fn publish_presence(
        &self,
        conn: ConnId,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        if let Some(c) = &self.cluster
            && c.ready
        {
            c.cluster.presence(&self.name, conn, kind, nick, old);
        }
    }

    /// `history`: from the cache when it reaches back far enough, else
    /// from Redis (a task; the room goes on meanwhile).
    pub(super) fn history_page(
        &mut self,
        before: u64,
        limit: usize,
        budget: usize,
        reply: oneshot::Sender<Vec<Msg>>,
    ) {
        let end = before.min(self.delivered + 1);
        let covered = end.saturating_sub(limit as u64).max(1) >= self.history.oldest();
        match &self.cluster {
            Some(c) if !covered && c.ready => {
                let cluster = c.cluster.clone();
                let name = self.name.clone();
                let cached = self.stored_before(end, limit, budget);
                tokio::spawn(async move {
                    let page = match cluster.before(&name, end, limit).await {
                        Ok(page) => crate::limits::newest_within(page, budget),
                        Err(_) => cached,
                    };
                    let _ = reply.send(page);
                });
            }
            _ => {
                let _ = reply.send(self.stored_before(end, limit, budget));
            }
        }
    }
}
