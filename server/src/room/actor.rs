//! The room actor's loop and state: the only code that touches a room.
//!
//! One pipeline for every backend: a post is appended to the [`Log`],
//! which gives it its `seq`; entries are delivered once stored, in `seq`
//! order, whether they came from this room's appends or from the [`Bus`]
//! (other processes); a gap is read back from the log. The room starts
//! from the log's snapshot (and reads it again after an outage).

mod members;
mod pipeline;
mod sync;

use super::{Command, ConnId, Member, RoomLimits, gate::Intake};
use crate::{
    log::{Bus, BusEvent, Log, Placed, Snapshot, StoreError},
    ring::Ring,
};
use bytes::Bytes;
use futures_util::{
    StreamExt,
    future::BoxFuture,
    stream::{FuturesOrdered, FuturesUnordered},
};
use prometheus_client::metrics::histogram::Histogram;
use shared::chat::{Cursor, ErrorBody, Msg, RoomState, Said};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, atomic::AtomicU32},
    time::{Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

type Reply = oneshot::Sender<Result<Said, ErrorBody>>;

/// An append in flight, in the order posted.
type AppendResult = oneshot::Receiver<Result<Placed, StoreError>>;

/// A join waiting for the room's first snapshot: who, from where, within
/// how many bytes.
type Parked = (
    ConnId,
    Option<Cursor>,
    usize,
    oneshot::Sender<Result<RoomState, ErrorBody>>,
);

/// The ports a room talks to.
#[derive(Clone)]
pub(crate) struct Ports {
    pub log: Arc<dyn Log>,
    pub bus: Arc<dyn Bus>,
}

/// What a room actor starts with.
pub(super) struct Setup {
    pub name: Arc<str>,
    pub ports: Ports,
    /// Messages the room keeps at hand for joins and recovery.
    pub capacity: usize,
    pub count: Arc<AtomicU32>,
    pub fanout: Histogram,
    pub store_full: prometheus_client::metrics::counter::Counter,
    pub limits: RoomLimits,
    pub intake: Arc<Intake>,
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

/// A post handed to the log, waiting for its place.
struct Appending {
    session: Option<String>,
    cid: Option<String>,
    from: String,
    text: String,
    change: Option<crate::log::ChangeOf>,
    reply: Option<u64>,
    received: Instant,
    replies: Vec<Reply>,
    /// Relayed bytes posted after it: they follow it.
    relays: Vec<Bytes>,
}

/// What the room's own reads bring back.
enum Task {
    Snapshot(Result<Snapshot, StoreError>),
    /// Entries read back from `from` on.
    Fetched {
        from: u64,
        result: Result<Vec<Msg>, StoreError>,
    },
}

struct Room {
    name: Arc<str>,
    log: Arc<dyn Log>,
    bus: Arc<dyn Bus>,
    /// The latest messages, for joins and recovery.
    cache: Ring,
    capacity: usize,
    limits: RoomLimits,
    intake: Arc<Intake>,
    store_full: prometheus_client::metrics::counter::Counter,
    rate: Option<RoomRate>,
    members: HashMap<ConnId, Member>,
    /// Members on other processes: `{node}:{conn}` → nick.
    remote: HashMap<String, String>,
    count: Arc<AtomicU32>,
    fanout: Histogram,
    /// The last message delivered here: everything up to it is stored.
    delivered: u64,
    /// The highest `seq` the log is known to have.
    head: u64,
    /// The snapshot was read at least once.
    ready: bool,
    /// A snapshot is being read.
    reading: bool,
    /// The shared store is away: posts are refused.
    degraded: bool,
    /// A read of missed entries is in flight.
    fetching: bool,
    /// Entries after `delivered` that arrived early.
    pending: BTreeMap<u64, Msg>,
    /// Acknowledgements waiting for their entry to be delivered.
    acks: BTreeMap<u64, Vec<(Reply, Said)>>,
    /// Relayed bytes waiting for the entry they follow.
    relays: BTreeMap<u64, Vec<Bytes>>,
    appending: VecDeque<Appending>,
    appends: FuturesOrdered<AppendResult>,
    /// When local posts arrived, for the fan-out latency metric.
    posted: HashMap<u64, Instant>,
    /// Joins waiting for the first snapshot.
    parked: Vec<Parked>,
    /// The room's own reads, in flight (polled by the room's loop: a room
    /// costs no channel for them).
    tasks: FuturesUnordered<BoxFuture<'static, Task>>,
}

/// Runs until every handle is dropped.
pub(super) async fn run(setup: Setup, mut rx: mpsc::Receiver<Command>) {
    let Setup {
        name,
        ports,
        capacity,
        count,
        fanout,
        store_full,
        limits,
        intake,
    } = setup;
    // A bounded queue: a room that falls behind loses bus events, and
    // catches up from the log (entries) or the next snapshot (presence).
    // Only where the bus carries anything (not in one process).
    let (bus_tx, mut bus_rx) = if ports.bus.carries() {
        let (tx, rx) = mpsc::channel::<BusEvent>(4_096);
        ports.bus.subscribe(name.clone(), tx.downgrade());
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let mut room = Room {
        cache: Ring::new(capacity, String::new()),
        name,
        log: ports.log,
        bus: ports.bus,
        capacity,
        rate: (limits.rate > 0).then(|| RoomRate {
            per_second: f64::from(limits.rate),
            tokens: f64::from(limits.rate),
            at: Instant::now(),
        }),
        limits,
        intake,
        store_full,
        members: HashMap::new(),
        remote: HashMap::new(),
        count,
        fanout,
        delivered: 0,
        head: 0,
        ready: false,
        reading: false,
        degraded: false,
        fetching: false,
        pending: BTreeMap::new(),
        acks: BTreeMap::new(),
        relays: BTreeMap::new(),
        appending: VecDeque::new(),
        appends: FuturesOrdered::new(),
        posted: HashMap::new(),
        parked: Vec::new(),
        tasks: FuturesUnordered::new(),
    };
    room.start();
    loop {
        tokio::select! {
            Some(result) = room.appends.next(), if !room.appends.is_empty() => {
                room.appended(result.unwrap_or_else(|_| Err(StoreError::Stopped)));
            }
            Some(task) = room.tasks.next(), if !room.tasks.is_empty() => room.task(task),
            Some(event) = async {
                match &mut bus_rx {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => room.bus_event(event),
            cmd = rx.recv() => match cmd {
                Some(cmd) => room.handle(cmd),
                None => break,
            },
        }
    }
    // Handles are gone; still settle what was handed to the store.
    while let Some(result) = room.appends.next().await {
        room.appended(result.unwrap_or_else(|_| Err(StoreError::Stopped)));
    }
    drop(bus_tx);
    room.bus.unsubscribe(&room.name);
    room.log.retire(&room.name);
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
                    if self.ready {
                        self.answer_join(since, budget, reply);
                    } else {
                        // Answered once the room has read its snapshot.
                        self.park(conn, since, budget, reply);
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
                conn,
                before,
                limit,
                budget,
                reply,
            } => {
                if self.members.contains_key(&conn) {
                    self.history_page(before, limit, budget, reply);
                } else {
                    let _ = reply.send(Err(ErrorBody::new(
                        shared::chat::ErrorCode::NotJoined,
                        format!("not a member of '{}'", self.name),
                    )));
                }
            }
            Command::Remove {
                nick,
                signed_in,
                removed,
                reply,
            } => {
                // Here, and on every other process with the room open.
                let elsewhere = self.remote.values().filter(|n| **n == nick).count();
                let here = self.remove_person(&nick, signed_in, &removed);
                let removal = crate::log::Removal {
                    node: self.bus.node().to_owned(),
                    nick,
                    signed_in,
                    removed,
                };
                self.bus.removed(&self.name, &removal);
                let _ = reply.send(here + elsewhere);
            }
            Command::Typing { conn, on } => self.typing(conn, on),
            Command::Rename { conn, nick } => self.rename(conn, nick),
        }
    }

    fn task(&mut self, task: Task) {
        match task {
            Task::Snapshot(result) => self.snapshot(result),
            Task::Fetched { from, result } => self.fetched(from, result),
        }
    }

    fn bus_event(&mut self, event: BusEvent) {
        match event {
            BusEvent::Entry(msg) => self.remote_entry(msg),
            BusEvent::Presence(p) => self.remote_presence(p),
            BusEvent::Typing { node, nick, on } => self.remote_typing(&node, nick, on),
            BusEvent::Head(head) => self.head(head),
            BusEvent::Health(ok) => self.health(ok),
            BusEvent::Resync => self.read_snapshot(),
            BusEvent::Remove(r) if r.node != self.bus.node() => {
                self.remove_person(&r.nick, r.signed_in, &r.removed);
            }
            BusEvent::Remove(_) => {}
        }
    }

    /// Runs a read beside the room's work; its result comes back to it.
    fn spawn_task(&self, work: impl Future<Output = Task> + Send + 'static) {
        self.tasks.push(Box::pin(work));
    }
}
