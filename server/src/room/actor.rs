//! The room actor's loop: the only code that touches a room's state.

mod clustered;

pub(crate) use clustered::Clustered;

use super::{Command, ConnId, Member, Post, RoomLimits, gate::Intake};
use crate::{
    history::{Commit, History, HistoryStore, StoreError},
    limits::{self, msg_bytes, newest_within},
    session::outbox::Pushed,
};
use bytes::Bytes;
use futures_util::{StreamExt, stream::FuturesOrdered};
use prometheus_client::metrics::histogram::Histogram;
use shared::{
    Frame,
    chat::{Cursor, ErrorBody, ErrorCode, Msg, Presence, PresenceKind, RoomState, Said, TypingOut},
    event::name,
};
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

type Reply = tokio::sync::oneshot::Sender<Result<Said, ErrorBody>>;

/// A message handed to the store, waiting for its commit.
struct Inflight {
    received: Instant,
    seq: u64,
    generation: u64,
    session: Option<String>,
    cid: Option<String>,
    said: Said,
    rich: Bytes,
    seed: Option<Bytes>,
    replies: Vec<Reply>,
    /// Relayed bytes posted after this message: they follow it.
    relays: Vec<Bytes>,
}

/// What a room actor starts with.
pub(super) struct Setup {
    pub name: Arc<str>,
    pub history: Box<dyn History>,
    pub count: Arc<AtomicU32>,
    pub fanout: Histogram,
    pub store_full: prometheus_client::metrics::counter::Counter,
    pub cluster: Option<Clustered>,
    pub limits: RoomLimits,
    pub intake: Arc<Intake>,
    /// Where the history goes back when the room retires (one process).
    pub store: Option<Arc<dyn HistoryStore>>,
}

/// Slow mode: a token bucket of the room's posts.
struct RoomRate {
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl RoomRate {
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Room {
    name: Arc<str>,
    history: Box<dyn History>,
    limits: RoomLimits,
    intake: Arc<Intake>,
    store_full: prometheus_client::metrics::counter::Counter,
    rate: Option<RoomRate>,
    members: HashMap<ConnId, Member>,
    count: Arc<AtomicU32>,
    /// The last message members have been sent: everything up to it is durable.
    delivered: u64,
    /// Bumped when a commit fails, so the failure rewinds `seq` only once.
    generation: u64,
    inflight: VecDeque<Inflight>,
    /// Commits of `inflight`, resolving in the same (seq) order.
    commits: FuturesOrdered<Commit>,
    fanout: Histogram,
    /// Cluster mode: what the room knows of Redis and the other processes.
    cluster: Option<clustered::State>,
    /// Cluster mode: appends to Redis, resolving in the order posted.
    appends: FuturesOrdered<clustered::AppendResult>,
}

/// Runs until every handle is dropped.
pub(super) async fn run(setup: Setup, mut rx: mpsc::Receiver<Command>) {
    let Setup {
        name,
        history,
        count,
        fanout,
        store_full,
        cluster,
        limits,
        intake,
        store,
    } = setup;
    let delivered = history.last_seq();
    let mut room = Room {
        name,
        history,
        rate: (limits.rate > 0).then(|| RoomRate {
            per_second: f64::from(limits.rate),
            tokens: f64::from(limits.rate),
            at: Instant::now(),
        }),
        limits,
        intake,
        store_full,
        members: HashMap::new(),
        count,
        delivered,
        generation: 0,
        inflight: VecDeque::new(),
        commits: FuturesOrdered::new(),
        fanout,
        cluster: cluster.map(clustered::State::new),
        appends: FuturesOrdered::new(),
    };
    room.start();
    loop {
        tokio::select! {
            Some(result) = room.commits.next(), if !room.commits.is_empty() => {
                room.committed(result.unwrap_or_else(|_| Err(StoreError("store stopped".into()))));
            }
            Some(result) = room.appends.next(), if !room.appends.is_empty() => {
                room.appended(result);
            }
            cmd = rx.recv() => match cmd {
                Some(cmd) => room.handle(cmd),
                None => break,
            },
        }
    }
    // Handles are gone; still settle what was handed to the store.
    while let Some(result) = room.commits.next().await {
        room.committed(result.unwrap_or_else(|_| Err(StoreError("store stopped".into()))));
    }
    while let Some(result) = room.appends.next().await {
        room.appended(result);
    }
    if let Some(c) = &room.cluster {
        c.cluster.unregister(&room.name);
    } else if let Some(store) = store {
        store.retire(&room.name, room.history);
    }
    debug!(room = %room.name, "room actor stopped");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn json(value: &impl serde::Serialize) -> Bytes {
    // Plain data types: serialization cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

impl Room {
    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join {
                member,
                since,
                budget,
                reply,
            } => {
                let conn = member.conn;
                self.join(member);
                if let Some(reply) = reply {
                    if self.cluster.as_ref().is_some_and(|c| !c.ready) {
                        // Answered once the room has read its state from Redis.
                        self.park(conn, since, budget, reply);
                    } else {
                        self.answer_join(since, budget, reply);
                    }
                }
            }
            Command::Leave { conn, reply, quiet } => {
                let was = self.remove(conn, quiet);
                if let Some(reply) = reply {
                    let _ = reply.send(was);
                }
            }
            Command::Post {
                post,
                permit: _permit,
                reply,
            } => self.post(post, reply),
            Command::Relay {
                payload,
                permit: _permit,
            } => self.relay(&payload),
            Command::History {
                before,
                limit,
                budget,
                reply,
            } => self.history_page(before, limit, budget, reply),
            Command::Typing { conn, on } => self.typing(conn, on),
            Command::Rename { conn, nick } => self.rename(conn, nick),
            Command::Remote(remote) => self.remote(remote),
            Command::Head(head) => self.head(head),
            Command::Snapshot(result) => self.snapshot(result),
            Command::Fetched { from, result } => self.fetched(from, result),
            Command::Health(ok) => self.health(ok),
            Command::Resync => self.resync(),
        }
    }

    /// Members in the whole room: here, and on other processes.
    fn total_members(&self) -> usize {
        self.members.len() + self.cluster.as_ref().map_or(0, |c| c.remote.len())
    }

    fn set_count(&self) {
        let n = u32::try_from(self.total_members()).unwrap_or(u32::MAX);
        self.count.store(n, Ordering::Relaxed);
    }

    /// Member nicks in order; past [`crate::limits::PRESENCE_LIMIT`]
    /// members, that many of them (any; picking would cost a pass over
    /// everyone for every join).
    fn members_sorted(&self) -> Vec<String> {
        let remote = self.cluster.iter().flat_map(|c| c.remote.values());
        let mut nicks: Vec<String> = self
            .members
            .values()
            .map(|m| &m.nick)
            .chain(remote)
            .take(crate::limits::PRESENCE_LIMIT)
            .cloned()
            .collect();
        nicks.sort_by_cached_key(|n| n.to_lowercase());
        // One session on two processes for a moment (a client that moved
        // before its old process was reaped) is one member.
        nicks.dedup();
        nicks
    }

    fn join(&mut self, member: Member) {
        let conn = member.conn;
        let nick = member.nick.clone();
        match self.members.insert(conn, member) {
            None => {
                self.set_count();
                debug!(room = %self.name, conn_id = conn, %nick, "joined");
                self.presence(&nick, PresenceKind::Join, None, Some(conn));
                self.publish_presence(conn, PresenceKind::Join, &nick, None);
            }
            Some(before) if before.nick != nick => {
                self.presence(&nick, PresenceKind::Rename, Some(before.nick.clone()), None);
                self.publish_presence(conn, PresenceKind::Rename, &nick, Some(before.nick));
            }
            Some(_) => {}
        }
    }

    /// Messages up to the last delivered one (never one still in flight),
    /// the newest that fit in `budget` bytes.
    fn stored_before(&self, before: u64, limit: usize, budget: usize) -> Vec<Msg> {
        newest_within(
            self.history.before(before.min(self.delivered + 1), limit),
            budget,
        )
    }

    /// The room's state for a joining member: exactly what it missed
    /// since `since` if that is stored and within the recovery bounds
    /// (`--max-recovery` messages, `budget` bytes), else the latest page.
    fn state(&self, since: Option<Cursor>, budget: usize) -> RoomState {
        let epoch = self.history.epoch().to_owned();
        let max = self.limits.max_recovery;
        let recovered = since
            .filter(|c| c.epoch == epoch && c.seq <= self.delivered)
            .filter(|c| self.delivered - c.seq <= max as u64)
            .and_then(|c| self.history.since(c.seq, max, budget))
            .map(|mut missed| {
                missed.retain(|m| m.seq <= self.delivered);
                missed
            })
            .filter(|missed| missed.iter().map(msg_bytes).sum::<usize>() <= budget);
        let (history, recovered) = match recovered {
            Some(missed) => (missed, true),
            None => (
                self.stored_before(u64::MAX, limits::JOIN_HISTORY, budget),
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
        }
    }

    fn remove(&mut self, conn: ConnId, quiet: bool) -> bool {
        let Some(member) = self.members.remove(&conn) else {
            return false;
        };
        self.set_count();
        debug!(room = %self.name, conn_id = conn, nick = %member.nick, "left");
        if !quiet {
            self.presence(&member.nick, PresenceKind::Leave, None, None);
        }
        self.publish_presence(conn, PresenceKind::Leave, &member.nick, None);
        true
    }

    /// Hands a message to the store; it is delivered and acknowledged once
    /// committed (see [`Room::committed`]).
    fn post(&mut self, post: Post, reply: Option<Reply>) {
        let answer = |reply: Option<Reply>, result: Result<Said, ErrorBody>| {
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
        };
        if !self.members.contains_key(&post.conn) {
            let err = ErrorBody::new(
                ErrorCode::NotJoined,
                format!("join '{}' before posting to it", self.name),
            );
            return answer(reply, Err(err));
        }
        if let Some(rate) = &mut self.rate
            && !rate.take(Instant::now())
        {
            let err = ErrorBody::new(
                ErrorCode::RateLimited,
                format!("'{}' is in slow mode; try again in a moment", self.name),
            );
            return answer(reply, Err(err));
        }
        if self.cluster.is_some() {
            return self.post_clustered(post, reply);
        }
        if let (Some(session), Some(cid)) = (&post.session, &post.cid) {
            // A retry of a message still being stored waits for the same commit.
            if let Some(entry) = self
                .inflight
                .iter_mut()
                .find(|e| e.session.as_ref() == Some(session) && e.cid.as_ref() == Some(cid))
            {
                entry.replies.extend(reply);
                return;
            }
            if let Some(said) = self.history.find_cid(session, cid) {
                return answer(reply, Ok(said));
            }
        }
        if !self.history.has_room(post.text.len()) {
            self.store_full.inc();
            let err = ErrorBody::new(
                ErrorCode::Unavailable,
                "the store is busy; try again in a moment",
            );
            return answer(reply, Err(err));
        }
        let msg = Msg {
            room: self.name.to_string(),
            epoch: self.history.epoch().to_owned(),
            seq: self.history.last_seq() + 1,
            from: post.from,
            text: post.text,
            ts: now_ms(),
            cid: post.cid.clone(),
        };
        let said = Said {
            seq: msg.seq,
            ts: msg.ts,
        };
        let (rich, seed) = self.msg_frames(&msg);
        let commit = self.history.append(msg, post.session.as_deref());
        self.inflight.push_back(Inflight {
            received: post.received,
            seq: said.seq,
            generation: self.generation,
            session: post.session,
            cid: post.cid,
            said,
            rich,
            seed,
            replies: reply.into_iter().collect(),
            relays: Vec::new(),
        });
        self.commits.push_back(commit);
    }

    /// A message's frames: `msg` for chat clients and, only if a seed client
    /// is here to get it, `message` with the raw text.
    fn msg_frames(&self, msg: &Msg) -> (Bytes, Option<Bytes>) {
        let rich = Frame::notify(name::MSG, json(msg)).encode();
        let seed = self
            .members
            .values()
            .any(|m| !m.rich)
            .then(|| Frame::notify(name::MESSAGE, Bytes::from(msg.text.clone())).encode());
        (rich, seed)
    }

    /// The oldest message in flight was committed (or not).
    fn committed(&mut self, result: Result<(), StoreError>) {
        let Some(mut entry) = self.inflight.pop_front() else {
            return;
        };
        let relays = std::mem::take(&mut entry.relays);
        match result {
            Ok(()) => {
                self.delivered = entry.seq;
                let (rich, seed) = (entry.rich, entry.seed);
                self.deliver(None, |m| {
                    if m.rich {
                        Some(rich.clone())
                    } else {
                        seed.clone()
                    }
                });
                self.fanout.observe(entry.received.elapsed().as_secs_f64());
                for reply in entry.replies {
                    let _ = reply.send(Ok(entry.said));
                }
            }
            Err(e) => {
                if entry.generation == self.generation {
                    warn!(room = %self.name, seq = entry.seq, error = %e, "could not store a message");
                    // Later messages of this generation fail too; new ones
                    // take this seq again.
                    self.history.rewind(entry.seq - 1);
                    self.generation += 1;
                }
                for reply in entry.replies {
                    let _ = reply.send(Err(ErrorBody::new(
                        ErrorCode::Unavailable,
                        "the message could not be stored; try again",
                    )));
                }
            }
        }
        for frame in relays {
            self.deliver(None, |m| (!m.rich).then(|| frame.clone()));
        }
    }

    /// Seed members get the bytes as a `message`, exactly as sent, in the
    /// order posted: after the messages still being stored (the original
    /// server keeps one sender's broadcasts in order, text or not). In
    /// cluster mode they go at once, to this process's members only (they
    /// are not stored, so they do not travel through Redis).
    fn relay(&mut self, payload: &[u8]) {
        if self.members.values().all(|m| m.rich) {
            return;
        }
        let frame = Frame::notify(name::MESSAGE, Bytes::copy_from_slice(payload)).encode();
        if let Some(last) = self.inflight.back_mut() {
            last.relays.push(frame);
            return;
        }
        self.deliver(None, |m| (!m.rich).then(|| frame.clone()));
    }

    fn typing(&mut self, conn: ConnId, on: bool) {
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let frame = Frame::notify(
            name::TYPING,
            json(&TypingOut {
                room: self.name.to_string(),
                nick: member.nick.clone(),
                on,
            }),
        )
        .encode();
        if let Some(c) = &self.cluster {
            c.cluster.typing(&self.name, &member.nick, on);
        }
        self.deliver(Some(conn), |m| m.rich.then(|| frame.clone()));
    }

    fn rename(&mut self, conn: ConnId, nick: String) {
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        if member.nick == nick {
            return;
        }
        let old = std::mem::replace(&mut member.nick, nick.clone());
        self.presence(&nick, PresenceKind::Rename, Some(old.clone()), None);
        self.publish_presence(conn, PresenceKind::Rename, &nick, Some(old));
    }

    /// Tells rich members (but `except`) about a presence change.
    fn presence(
        &mut self,
        nick: &str,
        what: PresenceKind,
        old: Option<String>,
        except: Option<ConnId>,
    ) {
        if let Some(frame) = self.presence_frame(nick, what, old, except) {
            self.deliver(except, |m| m.rich.then(|| frame.clone()));
        }
    }

    /// The presence frame for a change, unless nobody would get it: seed
    /// connections get no presence (a lobby full of them encodes nothing),
    /// and rooms past the presence limit send none.
    fn presence_frame(
        &self,
        nick: &str,
        what: PresenceKind,
        old: Option<String>,
        except: Option<ConnId>,
    ) -> Option<Bytes> {
        if self.total_members() > crate::limits::PRESENCE_LIMIT
            || !self
                .members
                .iter()
                .any(|(c, m)| m.rich && Some(*c) != except)
        {
            return None;
        }
        Some(
            Frame::notify(
                name::PRESENCE,
                json(&Presence {
                    room: self.name.to_string(),
                    nick: nick.to_owned(),
                    what,
                    old,
                    members: u32::try_from(self.total_members()).unwrap_or(u32::MAX),
                }),
            )
            .encode(),
        )
    }

    /// Pushes a frame to every member (but `except`) without waiting.
    /// Members that cannot take it are gone or too slow: they are removed,
    /// and the others are told they left (which can find more of them: a
    /// work list, not recursion, so a cascade cannot exhaust the stack).
    fn deliver(&mut self, except: Option<ConnId>, frame_for: impl Fn(&Member) -> Option<Bytes>) {
        let mut dropped = self.push_all(except, |m| frame_for(m));
        while let Some(conn) = dropped.pop() {
            let Some(member) = self.members.remove(&conn) else {
                continue;
            };
            warn!(room = %self.name, conn_id = conn, nick = %member.nick, "dropping a member that cannot keep up");
            self.set_count();
            self.publish_presence(conn, PresenceKind::Leave, &member.nick, None);
            if let Some(frame) = self.presence_frame(&member.nick, PresenceKind::Leave, None, None)
            {
                dropped.extend(self.push_all(None, |m| m.rich.then(|| frame.clone())));
            }
        }
    }

    /// Pushes to every member but `except`; returns those that could not
    /// take it.
    /// Members past their outbox's high-water mark close the room's
    /// intake until they drain (see [`Intake`]).
    fn push_all(
        &self,
        except: Option<ConnId>,
        frame_for: impl Fn(&Member) -> Option<Bytes>,
    ) -> Vec<ConnId> {
        let mut dropped = Vec::new();
        let mut slow = Vec::new();
        for (conn, member) in &self.members {
            if Some(*conn) == except {
                continue;
            }
            if let Some(frame) = frame_for(member) {
                match member.outbox.send(frame) {
                    Pushed::Queued => {}
                    Pushed::Slow => slow.push(member.outbox.clone()),
                    Pushed::Gone => dropped.push(*conn),
                }
            }
        }
        self.intake.hold(slow);
        dropped
    }
}
