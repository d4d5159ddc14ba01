//! Cluster mode (`--redis URL`): many server processes share rooms through
//! one Redis.
//!
//! - **Order.** A room's next `seq` comes from `INCR` inside one Lua script
//!   that also appends the message to the room's stream (entry id
//!   `{seq}-0`), records its `(session, cid)` and publishes it on the room's
//!   channel. Each process's room actor delivers to its own members in `seq`
//!   order: what pub/sub brings out of order waits, and a gap is read back
//!   from the stream (pub/sub may drop; the stream does not).
//! - **Catch-up.** Every second each process reads the head `seq` of its
//!   rooms (one `MGET`); a room behind it reads the gap from the stream. So
//!   after any outage every process converges without gaps.
//! - **Presence.** Members are a hash per room (`{node}:{conn}` → nick);
//!   changes are published. Each node refreshes a heartbeat key; a node whose
//!   key expires is reaped by whichever live node sees it first: its members
//!   leave (published) and its nicknames are freed.
//! - **Redis down.** A health check (every 500 ms) marks the cluster
//!   unhealthy: `say` answers `unavailable` at once, rooms tell their
//!   members `room_status: degraded`, and when Redis is back rooms re-read
//!   their state and catch up.
//!
//! Nothing here blocks a room actor: reads run as tasks that send their
//! result to the actor, writes go through one batching writer task.

mod durability;
mod keys;
mod scripts;

use crate::{
    config::ClusterConfig,
    history::SavedSession,
    ids::ConnId,
    log::{Bus, BusEvent, Entry, Log, Placed, Read, Snapshot, StoreError},
    metrics::ClusterMetrics,
};
use redis::{
    Client, Cmd, Script, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use serde::{Deserialize, Serialize};
use shared::chat::{Msg, PresenceKind};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long a `(session, cid)` pair is remembered for deduplication.
pub const CID_TTL_SECS: u64 = 3_600;
/// Writes batched into one pipeline at most.
const MAX_BATCH: usize = 512;
/// Writes waiting for the writer at most (beyond: refused or dropped).
const WRITE_QUEUE: usize = 65_536;
/// How often the health check runs.
const HEALTH_EVERY: Duration = Duration::from_millis(500);
/// How often rooms compare their position with Redis.
const HEADS_EVERY: Duration = Duration::from_secs(1);
/// Session changes kept while Redis is away, at most.
const MAX_UNSAVED: usize = 100_000;
/// Stream entries one expiry call looks at, at most.
const EXPIRE_BATCH: u64 = 1_000;
/// A Redis call taking longer than this counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// A presence change as published between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RemotePresence {
    pub node: String,
    pub key: String,
    pub kind: PresenceKind,
    pub nick: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
}

/// A typing change as published between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RemoteTyping {
    pub node: String,
    pub nick: String,
    pub on: bool,
}

/// Something another node (or Redis) published on a room's channel.
#[derive(Debug)]
enum Remote {
    Msg(Msg),
    Presence(RemotePresence),
    Typing(RemoteTyping),
}

impl Remote {
    fn into_event(self) -> BusEvent {
        match self {
            Remote::Msg(m) => BusEvent::Entry(m),
            Remote::Presence(p) => BusEvent::Presence(crate::log::RemotePresence {
                node: p.node,
                key: p.key,
                kind: p.kind,
                nick: p.nick,
                old: p.old,
            }),
            Remote::Typing(t) => BusEvent::Typing {
                node: t.node,
                nick: t.nick,
                on: t.on,
            },
        }
    }
}

/// A message body as stored and published (the room and seq are known
/// from the key and the stream id).
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    #[serde(default, skip_serializing)]
    epoch: String,
    from: String,
    text: String,
    ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cid: Option<String>,
}

impl Body {
    fn into_msg(self, room: &str, seq: u64) -> Msg {
        Msg {
            room: room.to_owned(),
            epoch: self.epoch,
            seq,
            from: self.from,
            text: self.text,
            ts: self.ts,
            cid: self.cid,
        }
    }
}

struct AppendOp {
    room: Arc<str>,
    /// What it counts for against the queue bound.
    bytes: usize,
    body: String,
    ts: i64,
    cid: Option<(String, String)>,
    reply: oneshot::Sender<Result<Placed, StoreError>>,
}

enum Op {
    Append(AppendOp),
    /// Commands whose results nobody waits for.
    Fire(Vec<Cmd>),
    /// A nickname to give back, or with `hold` (`~{until}:{session}`) to
    /// keep for its session (kept until it is done: a nickname that stayed
    /// claimed would be lost to everybody else).
    Release(Release),
    /// A session to save (kept until it is done, unless a newer save of
    /// the same session supersedes it).
    Save(UnsavedSession),
}

/// What [`Op::Release`] does to a connection's nickname.
#[derive(Debug, Clone)]
struct Release {
    nick: String,
    conn: u64,
    /// Keep it for the session (`~{until}:{session}`) instead of freeing it.
    hold: Option<String>,
}

/// Session saves waiting for Redis: the latest per session.
#[derive(Debug, Default)]
struct PendingSaves(HashMap<String, UnsavedSession>);

impl PendingSaves {
    /// Keeps `save` unless a later save of its session is kept; `false`
    /// when it had to be dropped (too many sessions waiting).
    fn keep(&mut self, save: UnsavedSession) -> bool {
        match self.0.get(&save.token) {
            Some(kept) if kept.order > save.order => true,
            Some(_) => {
                self.0.insert(save.token.clone(), save);
                true
            }
            None if self.0.len() < MAX_UNSAVED => {
                self.0.insert(save.token.clone(), save);
                true
            }
            None => false,
        }
    }

    /// `save` reached Redis (or is on its way): forget anything older.
    fn settle(&mut self, save: &UnsavedSession) {
        if self
            .0
            .get(&save.token)
            .is_some_and(|kept| kept.order <= save.order)
        {
            self.0.remove(&save.token);
        }
    }

    /// Everything kept, oldest first.
    fn take(&mut self) -> Vec<UnsavedSession> {
        let mut saves: Vec<UnsavedSession> = std::mem::take(&mut self.0).into_values().collect();
        saves.sort_by_key(|s| s.order);
        saves
    }
}

/// A session save that has not reached Redis yet.
#[derive(Debug, Clone)]
struct UnsavedSession {
    token: String,
    json: String,
    /// Order of the saves: a later one supersedes an earlier one.
    order: u64,
}

/// This process's membership in the cluster.
pub struct Cluster {
    /// What it counts.
    pub metrics: ClusterMetrics,
    /// Itself, for the tasks its reads start.
    me: std::sync::Weak<Cluster>,
    node: String,
    config: ClusterConfig,
    client: Client,
    conn: ConnectionManager,
    ops: mpsc::Sender<Op>,
    healthy: AtomicBool,
    /// Redis answers but is refused: it does not fsync every write.
    lossy: AtomicBool,
    /// Where each local room's channel goes (weak: a room retires when its
    /// last member leaves, and unregisters then).
    rooms: Mutex<HashMap<Arc<str>, mpsc::WeakSender<BusEvent>>>,
    /// Bytes of appends handed to the writer and not yet answered.
    queued: std::sync::atomic::AtomicUsize,
    /// Sessions that moved to another process: `(token, conn)` to close here.
    takeovers: mpsc::UnboundedSender<(String, u64)>,
    takeovers_rx: Mutex<Option<mpsc::UnboundedReceiver<(String, u64)>>>,
    /// Nicknames this process's connections hold: conn → (nick, session),
    /// claimed again after an outage (a peer may have reaped this node).
    held: Mutex<HashMap<u64, (String, Option<String>)>>,
    /// When Redis last became reachable: nodes are reaped only once they
    /// had a full heartbeat period since then.
    reachable_since: Mutex<std::time::Instant>,
    /// Releases that could not reach Redis; sent again when it is back.
    unreleased: Mutex<Vec<Release>>,
    /// Session saves that could not reach Redis (the latest per token);
    /// made again when it is back.
    unsaved: Mutex<PendingSaves>,
    /// Numbers session saves.
    saves: std::sync::atomic::AtomicU64,
    subscribe: mpsc::UnboundedSender<Subscription>,
    append: Script,
    claim: Script,
    release: Script,
    hold: Script,
    forget: Script,
    sweep_holds: Script,
    reap: Script,
    expire: Script,
    stop: CancellationToken,
}

/// A change to what the pub/sub connection listens to.
enum Subscription {
    Room(Arc<str>),
    Gone(Arc<str>),
}

/// The URL without its password, for logs.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.find('/').unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The Redis client for `config`: plain, or TLS for a `rediss://` URL.
fn client(config: &ClusterConfig) -> Result<Client, StoreError> {
    let tls = config.url.starts_with("rediss://");
    if !tls {
        if config.ca.is_some() || config.identity.is_some() {
            return Err(StoreError(
                "--redis-ca, --redis-cert and --redis-key need a rediss:// URL".into(),
            ));
        }
        return Client::open(config.url.as_str()).map_err(unavailable);
    }
    // One crypto provider for the process (a second install is a no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| StoreError(format!("cannot read {flag} {}: {e}", path.display())))
    };
    let root_cert = match &config.ca {
        Some(path) => Some(read("--redis-ca", path)?),
        None => None,
    };
    let client_tls = match &config.identity {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read("--redis-cert", cert)?,
            client_key: read("--redis-key", key)?,
        }),
        None => None,
    };
    Client::build_with_tls(
        config.url.as_str(),
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|e| StoreError(format!("TLS set-up: {e}")))
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("redis: {e}"))
}

impl Cluster {
    /// Connects (lazily: the server starts even while Redis is down) and
    /// starts the writer, subscriber, heartbeat and health tasks.
    pub async fn start(config: ClusterConfig) -> Result<Arc<Self>, StoreError> {
        let client = client(&config)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(unavailable)?;
        let (ops, ops_rx) = mpsc::channel(WRITE_QUEUE);
        let (subscribe, subscribe_rx) = mpsc::unbounded_channel();
        let (takeovers, takeovers_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new_cyclic(|me| Self {
            metrics: ClusterMetrics::default(),
            me: me.clone(),
            node: format!("{:016x}", rand::random::<u64>()),
            config,
            client,
            conn,
            ops,
            healthy: AtomicBool::new(false),
            lossy: AtomicBool::new(false),
            rooms: Mutex::new(HashMap::new()),
            queued: std::sync::atomic::AtomicUsize::new(0),
            takeovers,
            takeovers_rx: Mutex::new(Some(takeovers_rx)),
            unreleased: Mutex::new(Vec::new()),
            unsaved: Mutex::new(PendingSaves::default()),
            saves: std::sync::atomic::AtomicU64::new(0),
            held: Mutex::new(HashMap::new()),
            reachable_since: Mutex::new(std::time::Instant::now()),
            subscribe,
            append: Script::new(scripts::APPEND),
            claim: Script::new(scripts::CLAIM),
            release: Script::new(scripts::RELEASE),
            hold: Script::new(scripts::HOLD),
            forget: Script::new(scripts::FORGET),
            sweep_holds: Script::new(scripts::SWEEP_HOLDS),
            reap: Script::new(scripts::REAP),
            expire: Script::new(scripts::EXPIRE),
            stop: CancellationToken::new(),
        });
        match cluster.probe(true).await {
            Probe::Usable => match cluster.heartbeat().await {
                Ok(()) => {
                    cluster.healthy.store(true, Ordering::Relaxed);
                    cluster.metrics.redis_up.set(1);
                }
                Err(e) => {
                    warn!(error = %e, "redis is not reachable yet; rooms are degraded until it is")
                }
            },
            Probe::Lossy(why) => {
                return Err(StoreError(format!(
                    "refusing the Redis at {}: {why}. Acknowledged messages must survive a \
                     Redis crash: run it with `appendonly yes` and `appendfsync always`, or \
                     pass --redis-allow-lossy if losing them is intended",
                    redacted(&cluster.config.url)
                )));
            }
            Probe::Unreachable(e) => {
                warn!(error = %e, "redis is not reachable yet; rooms are degraded until it is")
            }
        }
        info!(node = %cluster.node, url = %redacted(&cluster.config.url), "cluster mode");
        tokio::spawn(writer(cluster.clone(), ops_rx));
        tokio::spawn(subscriber(cluster.clone(), subscribe_rx));
        tokio::spawn(health(cluster.clone()));
        tokio::spawn(heads(cluster.clone()));
        tokio::spawn(nodes(cluster.clone()));
        if let Some(age) = cluster.config.max_age {
            tokio::spawn(expire(cluster.clone(), age));
        }
        Ok(cluster)
    }

    /// Bytes of messages waiting for the Redis writer.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// This process's node id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis answered the last health check (and, unless
    /// `--redis-allow-lossy`, fsyncs every write).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Redis as `/healthz` reports it: `ok`, `unreachable`, or
    /// `not_durable` (it answers, but is refused: see [`durability`]).
    pub fn redis_state(&self) -> &'static str {
        if self.healthy() {
            "ok"
        } else if self.lossy.load(Ordering::Relaxed) {
            "not_durable"
        } else {
            "unreachable"
        }
    }

    /// Whether Redis can be used now. Its durability is read when it must
    /// be enforced, and at start-up (`first`) to warn about it otherwise.
    async fn probe(&self, first: bool) -> Probe {
        if let Err(e) = self.call::<String>(&redis::cmd("PING")).await {
            return Probe::Unreachable(e);
        }
        if self.config.allow_lossy && !first {
            return Probe::Usable;
        }
        let mut conn = self.conn.clone();
        match self
            .bounded(CALL_TIMEOUT, durability::read(&mut conn))
            .await
        {
            Ok(durability::Durability::Fsynced) => Probe::Usable,
            Ok(durability::Durability::Lossy(why)) if self.config.allow_lossy => {
                warn!(
                    %why,
                    "redis does not fsync every write: acknowledged messages can be lost if \
                     it crashes (allowed by --redis-allow-lossy)"
                );
                Probe::Usable
            }
            Ok(durability::Durability::Lossy(why)) => Probe::Lossy(why),
            Err(e) => Probe::Unreachable(e),
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, mpsc::WeakSender<BusEvent>>> {
        // Single inserts: a poisoned lock is still consistent.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn room_senders(&self) -> Vec<mpsc::Sender<BusEvent>> {
        self.locked().values().filter_map(|w| w.upgrade()).collect()
    }

    /// The local room with this name, while it runs.
    fn room_sender(&self, room: &str) -> Option<mpsc::Sender<BusEvent>> {
        self.locked().get(room).and_then(mpsc::WeakSender::upgrade)
    }

    /// A room actor starts: route its channel to it.
    fn register(&self, room: Arc<str>, tx: mpsc::WeakSender<BusEvent>) {
        self.locked().insert(room.clone(), tx);
        let _ = self.subscribe.send(Subscription::Room(room));
    }

    /// A room actor stopped (its last local member left): stop listening
    /// to its channel, and take it off the cluster's list of open rooms if
    /// no process has members in it any more.
    fn unregister(&self, room: &str) {
        let removed = {
            let mut rooms = self.locked();
            match rooms.get(room) {
                // A new actor for the room may have started meanwhile.
                Some(tx) if tx.strong_count() == 0 => rooms.remove_entry(room).map(|(r, _)| r),
                _ => None,
            }
        };
        let Some(room) = removed else { return };
        let _ = self.subscribe.send(Subscription::Gone(room.clone()));
        if !self.healthy() {
            return;
        }
        let script = self.forget.clone();
        let mut conn = self.conn.clone();
        tokio::spawn(async move {
            let mut invocation = script.prepare_invoke();
            invocation
                .key(keys::members(&room))
                .key(keys::ROOMS)
                .arg(&*room);
            let _ =
                tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async::<i64>(&mut conn)).await;
        });
    }

    /// Whether a room exists in the cluster (has an epoch), without
    /// creating it.
    pub(crate) async fn room_exists(&self, room: &str) -> bool {
        self.call::<bool>(redis::cmd("EXISTS").arg(keys::epoch(room)))
            .await
            .unwrap_or(false)
    }

    /// `{node}:{conn}`: a member's field in a room's member hash.
    pub(crate) fn member_key(&self, conn: u64) -> String {
        format!("{}:{conn}", self.node)
    }

    /// A Redis call that gives up after `limit`; failures are counted.
    async fn bounded<T>(
        &self,
        limit: Duration,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable("timed out")),
        };
        if result.is_err() {
            self.metrics.redis_errors.inc();
        }
        result
    }

    async fn call<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded(CALL_TIMEOUT, cmd.query_async::<T>(&mut conn))
            .await
    }

    async fn heartbeat(&self) -> Result<(), StoreError> {
        let ttl_ms = u64::try_from(self.config.node_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(keys::node(&self.node))
            .arg(1)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .sadd(keys::NODES, &self.node)
            .ignore();
        let mut conn = self.conn.clone();
        self.bounded(CALL_TIMEOUT, pipe.query_async::<()>(&mut conn))
            .await
    }

    /// Queues commands whose answers nobody waits for (presence, sessions).
    /// While Redis is down they are dropped: rooms re-register their
    /// members when it is back.
    pub(crate) fn fire(&self, cmds: Vec<Cmd>) {
        if !self.healthy() {
            return;
        }
        if self.ops.try_send(Op::Fire(cmds)).is_err() {
            warn!("redis write queue is full; dropping a presence update");
        }
    }

    /// Appends a message; resolves once Redis has stored it (or could not).
    fn append_body(
        &self,
        room: Arc<str>,
        from: &str,
        text: &str,
        ts: i64,
        cid: Option<(String, String)>,
    ) -> oneshot::Receiver<Result<Placed, StoreError>> {
        let (reply, rx) = oneshot::channel();
        if !self.healthy() {
            let _ = reply.send(Err(unavailable("not reachable")));
            return rx;
        }
        let bytes = text.len() + from.len() + 128;
        let queued = self.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if queued > self.config.queue_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            let _ = reply.send(Err(unavailable("the write queue is full")));
            return rx;
        }
        let body = serde_json::to_string(&Body {
            epoch: String::new(),
            from: from.to_owned(),
            text: text.to_owned(),
            ts,
            cid: cid.as_ref().map(|(_, c)| c.clone()),
        })
        .unwrap_or_default();
        let op = Op::Append(AppendOp {
            room,
            bytes,
            body,
            ts,
            cid,
            reply,
        });
        if let Err(
            mpsc::error::TrySendError::Full(Op::Append(op))
            | mpsc::error::TrySendError::Closed(Op::Append(op)),
        ) = self.ops.try_send(op)
        {
            self.queued.fetch_sub(op.bytes, Ordering::AcqRel);
            let _ = op.reply.send(Err(unavailable("write queue is full")));
        }
        rx
    }

    /// The room's epoch, head, latest `recent` messages and members, read
    /// atomically (creating the epoch on first use).
    async fn read_snapshot(&self, room: &str, recent: usize) -> Result<Snapshot, StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .sadd(keys::ROOMS, room)
            .ignore()
            .cmd("SET")
            .arg(keys::epoch(room))
            .arg(crate::ids::new_epoch())
            .arg("NX")
            .ignore()
            .get(keys::epoch(room))
            .get(keys::seq(room))
            .cmd("XREVRANGE")
            .arg(keys::log(room))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(recent.max(1))
            .hgetall(keys::members(room));
        let mut conn = self.conn.clone();
        let (epoch, head, log, members): (String, Option<u64>, Value, HashMap<String, String>) =
            self.bounded(CALL_TIMEOUT, pipe.query_async(&mut conn))
                .await?;
        let mut recent_msgs = entries(room, log)?;
        recent_msgs.reverse();
        if recent == 0 {
            recent_msgs.clear();
        }
        Ok(Snapshot {
            epoch,
            head: head.unwrap_or(0),
            recent: recent_msgs,
            members,
        })
    }

    /// Every room of the cluster with its member count (at most `limit`
    /// rooms, busiest first).
    pub async fn rooms(&self, limit: usize) -> Result<Vec<shared::chat::RoomInfo>, StoreError> {
        let names: Vec<String> = self.call(redis::cmd("SMEMBERS").arg(keys::ROOMS)).await?;
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.hlen(keys::members(name));
        }
        let mut conn = self.conn.clone();
        let counts: Vec<u32> = self
            .bounded(CALL_TIMEOUT, pipe.query_async(&mut conn))
            .await?;
        let mut rooms: Vec<shared::chat::RoomInfo> = names
            .into_iter()
            .zip(counts)
            .map(|(room, members)| shared::chat::RoomInfo { room, members })
            .collect();
        rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(limit);
        Ok(rooms)
    }

    /// Messages `from..=to` of a room's stream (fewer when trimmed).
    async fn read_range(&self, room: &str, from: u64, to: u64) -> Result<Vec<Msg>, StoreError> {
        self.metrics.stream_reads.inc();
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(keys::log(room))
            .arg(format!("{from}-0"))
            .arg(format!("{to}-0"));
        entries(room, self.call(&cmd).await?)
    }

    /// Up to `limit` messages with `seq < before`, oldest first.
    async fn read_before(
        &self,
        room: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Msg>, StoreError> {
        if before <= 1 || limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(keys::log(room))
            .arg(format!("{}-0", before - 1))
            .arg("-")
            .arg("COUNT")
            .arg(limit);
        let mut msgs = entries(room, self.call(&cmd).await?)?;
        msgs.reverse();
        Ok(msgs)
    }

    /// Publishes a presence change and records it in the member hash.
    fn publish_presence(
        &self,
        room: &str,
        conn: u64,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        self.presence_by_key(room, self.member_key(conn), kind, nick, old);
    }

    /// [`Cluster::presence`] for a member hash field.
    pub(crate) fn presence_by_key(
        &self,
        room: &str,
        key: String,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        let mut cmds = Vec::with_capacity(3);
        match kind {
            PresenceKind::Join | PresenceKind::Rename => {
                cmds.push(
                    redis::cmd("HSET")
                        .arg(keys::members(room))
                        .arg(&key)
                        .arg(nick)
                        .clone(),
                );
                cmds.push(
                    redis::cmd("SADD")
                        .arg(keys::node_rooms(&self.node))
                        .arg(room)
                        .clone(),
                );
            }
            PresenceKind::Leave => {
                cmds.push(
                    redis::cmd("HDEL")
                        .arg(keys::members(room))
                        .arg(&key)
                        .clone(),
                );
            }
        }
        let event = RemotePresence {
            node: self.node.clone(),
            key,
            kind,
            nick: nick.to_owned(),
            old,
        };
        let payload = format!("p{}", serde_json::to_string(&event).unwrap_or_default());
        cmds.push(
            redis::cmd("PUBLISH")
                .arg(keys::channel(room))
                .arg(payload)
                .clone(),
        );
        self.fire(cmds);
    }

    /// Publishes a typing change.
    fn publish_typing(&self, room: &str, nick: &str, on: bool) {
        let event = RemoteTyping {
            node: self.node.clone(),
            nick: nick.to_owned(),
            on,
        };
        let payload = format!("t{}", serde_json::to_string(&event).unwrap_or_default());
        self.fire(vec![
            redis::cmd("PUBLISH")
                .arg(keys::channel(room))
                .arg(payload)
                .clone(),
        ]);
    }

    /// A message on this node's control channel.
    fn control(&self, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload);
        let mut parts = text.split(' ');
        if let (Some("kill"), Some(conn), Some(token)) = (parts.next(), parts.next(), parts.next())
            && let Ok(conn) = conn.parse()
        {
            let _ = self.takeovers.send((token.to_owned(), conn));
        }
    }

    fn holder(&self, conn: u64, session: Option<&str>) -> String {
        format!("{}:{conn}:{}", self.node, session.unwrap_or(""))
    }

    /// Claims exactly `nick` for a connection: `Ok(false)` when a live
    /// connection of another session holds it.
    pub async fn claim_exact(
        &self,
        nick: &str,
        conn: u64,
        session: Option<&str>,
    ) -> Result<bool, StoreError> {
        // Not gated on the health flag: it lags by up to one check, and a
        // call to a Redis that is down fails at once anyway.
        let mut invocation = self.claim.prepare_invoke();
        invocation
            .key(keys::NICKS)
            .key(keys::node_nicks(&self.node))
            .arg(crate::names::nick_key(nick))
            .arg(self.holder(conn, session))
            .arg(session.unwrap_or(""))
            .arg(self.holder(conn, None))
            .arg(now_ms());
        let mut con = self.conn.clone();
        let granted = self
            .bounded(CALL_TIMEOUT, invocation.invoke_async::<i64>(&mut con))
            .await?
            == 1;
        if granted {
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(conn, (nick.to_owned(), session.map(str::to_owned)));
        }
        Ok(granted)
    }

    /// After an outage: claims every held nickname again (a peer that
    /// thought this node dead may have freed them).
    async fn reclaim_nicks(&self) {
        let held: Vec<(u64, (String, Option<String>))> = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(c, h)| (*c, h.clone()))
            .collect();
        for (conn, (nick, session)) in held {
            match self.claim_exact(&nick, conn, session.as_deref()).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!(%nick, conn_id = conn, "a nickname was taken by another process during an outage")
                }
                Err(e) => {
                    debug!(error = %e, "cannot reclaim nicknames yet");
                    return;
                }
            }
        }
    }

    /// Claims `wanted`, or `wanted-2`, `wanted-3`… Returns the nick granted.
    pub async fn claim_free(
        &self,
        wanted: &str,
        conn: u64,
        session: Option<&str>,
    ) -> Result<String, StoreError> {
        let mut candidate = wanted.to_owned();
        for n in 2u64.. {
            if self.claim_exact(&candidate, conn, session).await? {
                return Ok(candidate);
            }
            candidate = crate::names::suffixed(wanted, n);
        }
        unreachable!("the loop returns")
    }

    /// Gives a nickname back if this connection holds it.
    pub fn release(&self, nick: &str, conn: u64) {
        self.let_go(Release {
            nick: nick.to_owned(),
            conn,
            hold: None,
        });
    }

    /// A connection with a session ended: its nickname stays the
    /// session's for the session's lifetime (across every process).
    pub fn detach(&self, nick: &str, conn: u64, session: &str) {
        let ttl_ms = self.config.session_ttl_secs.saturating_mul(1_000);
        let until = now_ms().saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        self.let_go(Release {
            nick: nick.to_owned(),
            conn,
            hold: Some(format!("~{until}:{session}")),
        });
    }

    fn let_go(&self, release: Release) {
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held.get(&release.conn).is_some_and(|(n, _)| {
                crate::names::nick_key(n) == crate::names::nick_key(&release.nick)
            }) {
                held.remove(&release.conn);
            }
        }
        let op = Op::Release(release);
        if !self.healthy() {
            self.defer_release(op);
        } else if let Err(
            mpsc::error::TrySendError::Full(op) | mpsc::error::TrySendError::Closed(op),
        ) = self.ops.try_send(op)
        {
            self.defer_release(op);
        }
    }

    fn defer_releases(&self, releases: Vec<Release>) {
        if !releases.is_empty() {
            self.unreleased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(releases);
        }
    }

    fn defer_release(&self, op: Op) {
        if let Op::Release(release) = op {
            self.unreleased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(release);
        }
    }

    /// Sends the releases Redis missed.
    fn retry_releases(&self) {
        let pending =
            std::mem::take(&mut *self.unreleased.lock().unwrap_or_else(|p| p.into_inner()));
        for release in pending {
            self.let_go(release);
        }
    }

    /// Sessions resumed on another process, to be closed here (taken once,
    /// by the state that owns the directory).
    pub fn takeovers(&self) -> Option<mpsc::UnboundedReceiver<(String, u64)>> {
        self.takeovers_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Records that `token` is live on this connection; if it was live on
    /// another process, tells that process to close its connection (as one
    /// process does when a session is resumed on a second connection).
    pub async fn went_live(&self, token: &str, conn: u64) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(keys::live(token))
            .arg(self.member_key(conn))
            .arg("EX")
            .arg(self.config.session_ttl_secs.max(1))
            .arg("GET");
        let Ok(Some(before)) = self.call::<Option<String>>(&cmd).await else {
            return;
        };
        let Some((node, old_conn)) = before.split_once(':') else {
            return;
        };
        if node != self.node {
            self.fire(vec![
                redis::cmd("PUBLISH")
                    .arg(keys::control(node))
                    .arg(format!("kill {old_conn} {token}"))
                    .clone(),
            ]);
        }
    }

    /// A session saved by any process.
    pub async fn load_session(&self, token: &str) -> Option<SavedSession> {
        let raw: Option<String> = self
            .call(redis::cmd("GET").arg(keys::session(token)))
            .await
            .ok()?;
        let saved: StoredSession = serde_json::from_str(&raw?).ok()?;
        Some(SavedSession {
            nick: saved.nick,
            rooms: saved.rooms,
        })
    }

    /// Saves a session for whichever process the client comes back to.
    pub fn save_session(&self, token: &str, session: &SavedSession) {
        let json = serde_json::to_string(&StoredSession {
            nick: session.nick.clone(),
            rooms: session.rooms.clone(),
        })
        .unwrap_or_default();
        let save = UnsavedSession {
            token: token.to_owned(),
            json,
            order: self.saves.fetch_add(1, Ordering::Relaxed),
        };
        if !self.healthy() {
            self.defer_saves(vec![save]);
            return;
        }
        // Whatever was kept for this session is older: never make it again.
        self.settle_saves(std::slice::from_ref(&save));
        self.queue_save(save);
    }

    /// Hands a save to the writer, or keeps it for later.
    fn queue_save(&self, save: UnsavedSession) {
        if let Err(e) = self.ops.try_send(Op::Save(save))
            && let Op::Save(save) = e.into_inner()
        {
            self.defer_saves(vec![save]);
        }
    }

    /// Keeps saves that did not reach Redis, unless a later save of the
    /// same session is already kept.
    fn defer_saves(&self, saves: Vec<UnsavedSession>) {
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
        for save in saves {
            if !unsaved.keep(save) {
                warn!("too many session saves waiting for redis; dropping one");
            }
        }
    }

    /// Saves that reached Redis: nothing older of theirs is to be made again.
    fn settle_saves(&self, saves: &[UnsavedSession]) {
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
        for save in saves {
            unsaved.settle(save);
        }
    }

    fn session_set(&self, token: &str, json: &str) -> Cmd {
        redis::cmd("SET")
            .arg(keys::session(token))
            .arg(json)
            .arg("EX")
            .arg(self.config.session_ttl_secs.max(1))
            .clone()
    }

    /// Makes again the session saves that could not reach Redis.
    fn retry_saves(&self) {
        let saves = self
            .unsaved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for save in saves {
            self.queue_save(save);
        }
    }

    /// Leaves the cluster: this node's members leave their rooms and its
    /// nicknames are freed, now rather than when its heartbeat expires.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        if let Err(e) = self.reap_node(&self.node, true).await {
            debug!(error = %e, "could not leave the cluster cleanly; the others will reap this node");
        }
    }

    /// When messages older than `--retention-days` are dropped: the cutoff
    /// in ms since the Unix epoch (`None`: kept until trimmed by count).
    pub(crate) fn expiry_cutoff(&self) -> Option<i64> {
        let age = i64::try_from(self.config.max_age?.as_millis()).unwrap_or(i64::MAX);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Some(now.saturating_sub(age))
    }

    /// Removes a room's messages older than `cutoff` from its stream;
    /// returns how many.
    async fn expire_room(&self, room: &str, cutoff: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let mut invocation = self.expire.prepare_invoke();
            invocation
                .key(keys::log(room))
                .arg(cutoff)
                .arg(EXPIRE_BATCH);
            let mut con = self.conn.clone();
            let n = self
                .bounded(CALL_TIMEOUT, invocation.invoke_async::<u64>(&mut con))
                .await?;
            removed += n;
            if n < EXPIRE_BATCH {
                return Ok(removed);
            }
        }
    }

    async fn reap_node(&self, node: &str, force: bool) -> Result<i64, StoreError> {
        let mut invocation = self.reap.prepare_invoke();
        invocation
            .key(keys::NODES)
            .key(keys::NICKS)
            .key(keys::node_rooms(node))
            .key(keys::node_nicks(node))
            .key(keys::node(node))
            .arg(node)
            .arg(if force { "force" } else { "" })
            .arg(
                now_ms().saturating_add(
                    i64::try_from(self.config.session_ttl_secs.saturating_mul(1_000))
                        .unwrap_or(i64::MAX),
                ),
            );
        let mut con = self.conn.clone();
        self.bounded(CALL_TIMEOUT * 5, invocation.invoke_async::<i64>(&mut con))
            .await
    }

    /// Forgets nicknames held for sessions that expired, a slice of the
    /// hash at a time; returns where the next call goes on.
    async fn sweep_holds(&self, cursor: u64) -> Result<u64, StoreError> {
        let mut invocation = self.sweep_holds.prepare_invoke();
        invocation.key(keys::NICKS).arg(cursor).arg(now_ms());
        let mut con = self.conn.clone();
        self.bounded(CALL_TIMEOUT, invocation.invoke_async::<u64>(&mut con))
            .await
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSession {
    nick: String,
    rooms: Vec<String>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Stream entries (`XRANGE`/`XREVRANGE` replies) as messages.
fn entries(room: &str, value: Value) -> Result<Vec<Msg>, StoreError> {
    let Value::Array(items) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            other => Err(StoreError(format!("unexpected stream reply: {other:?}"))),
        };
    };
    let mut msgs = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut parts) = item else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let fields = parts.pop();
        let id = parts.pop().as_ref().and_then(text).unwrap_or_default();
        // Our entries are `{seq}-0` with seq ≥ 1; anything else is not ours.
        let Some(seq) = id
            .split('-')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|seq| *seq > 0)
        else {
            continue;
        };
        let body = match fields {
            Some(Value::Array(f)) => f
                .chunks(2)
                .find(|kv| kv.first().and_then(text).as_deref() == Some("m"))
                .and_then(|kv| kv.get(1).and_then(text)),
            Some(Value::Map(f)) => f
                .iter()
                .find(|(k, _)| text(k).as_deref() == Some("m"))
                .and_then(|(_, v)| text(v)),
            _ => None,
        };
        match body.map(|b| serde_json::from_str::<Body>(&b)) {
            Some(Ok(body)) => msgs.push(body.into_msg(room, seq)),
            _ => warn!(room, seq, "skipping an unreadable stream entry"),
        }
    }
    Ok(msgs)
}

/// A room channel's payload: `m{seq}\n{body}`, `p{presence}` or `t{typing}`.
fn parse_remote(room: &str, payload: &[u8]) -> Option<Remote> {
    let (kind, rest) = payload.split_first()?;
    match kind {
        b'm' => {
            let newline = rest.iter().position(|b| *b == b'\n')?;
            let seq: u64 = std::str::from_utf8(&rest[..newline])
                .ok()?
                .parse()
                .ok()
                .filter(|seq| *seq > 0)?;
            let body: Body = serde_json::from_slice(&rest[newline + 1..]).ok()?;
            Some(Remote::Msg(body.into_msg(room, seq)))
        }
        b'p' => serde_json::from_slice(rest).ok().map(Remote::Presence),
        b't' => serde_json::from_slice(rest).ok().map(Remote::Typing),
        _ => None,
    }
}

/// Runs the queued writes, batched: one pipeline per batch, in queue
/// order, so one room's messages are stored in the order they were posted.
async fn writer(cluster: Arc<Cluster>, mut rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        // Loaded each batch: after a Redis restart the script cache is empty.
        pipe.load_script(&cluster.append);
        pipe.load_script(&cluster.release);
        pipe.load_script(&cluster.hold);
        let mut waiting = Vec::new();
        let mut releases = Vec::new();
        let mut saves = Vec::new();
        let mut bytes = 0;
        for op in batch.drain(..) {
            match op {
                Op::Append(op) => {
                    bytes += op.bytes;
                    let room = &op.room;
                    let mut invocation = cluster.append.prepare_invoke();
                    let (cid_key, cid_ttl) = match &op.cid {
                        Some((session, cid)) => {
                            (keys::cid(room, session, cid), CID_TTL_SECS.to_string())
                        }
                        None => (keys::seq(room), String::new()),
                    };
                    let body = op.body.strip_prefix('{').unwrap_or(&op.body);
                    invocation
                        .key(keys::seq(room))
                        .key(keys::log(room))
                        .key(keys::epoch(room))
                        .key(cid_key)
                        .key(keys::LOGS)
                        .arg(body)
                        .arg(crate::ids::new_epoch())
                        .arg(cluster.config.retention.max(1))
                        .arg(cid_ttl)
                        .arg(op.ts)
                        .arg(keys::channel(room))
                        .arg(&**room);
                    pipe.invoke_script(&invocation);
                    waiting.push(Some((op.reply, op.ts)));
                }
                Op::Fire(cmds) => {
                    for cmd in cmds {
                        pipe.add_command(cmd);
                        waiting.push(None);
                    }
                }
                Op::Release(release) => {
                    // EVALSHA: the scripts were loaded at the start of the batch.
                    let mut cmd = redis::cmd("EVALSHA");
                    let script = match release.hold {
                        Some(_) => &cluster.hold,
                        None => &cluster.release,
                    };
                    cmd.arg(script.get_hash())
                        .arg(1)
                        .arg(keys::NICKS)
                        .arg(crate::names::nick_key(&release.nick))
                        .arg(cluster.holder(release.conn, None));
                    if let Some(hold) = &release.hold {
                        cmd.arg(hold);
                    }
                    pipe.add_command(cmd);
                    waiting.push(None);
                    releases.push(release);
                }
                Op::Save(save) => {
                    pipe.add_command(cluster.session_set(&save.token, &save.json));
                    waiting.push(None);
                    saves.push(save);
                }
            }
        }
        let mut conn = cluster.conn.clone();
        let result =
            tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<Vec<Value>>(&mut conn)).await;
        cluster.queued.fetch_sub(bytes, Ordering::AcqRel);
        let result = match result {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable("timed out")),
        };
        let values = match result {
            Ok(values) => values,
            Err(e) => {
                cluster.metrics.redis_errors.inc();
                fail_all(waiting, &e);
                cluster.defer_releases(releases);
                cluster.defer_saves(saves);
                continue;
            }
        };
        cluster.settle_saves(&saves);
        for (value, reply) in values.into_iter().skip(3).zip(waiting) {
            match (reply, value) {
                (Some((reply, ts)), value) => {
                    let _ = reply.send(appended(value, ts));
                }
                (None, Value::ServerError(e)) => debug!(error = ?e, "a presence write failed"),
                (None, _) => {}
            }
        }
    }
}

type Waiting = Option<(oneshot::Sender<Result<Placed, StoreError>>, i64)>;

fn fail_all(waiting: Vec<Waiting>, e: &StoreError) {
    for (reply, _) in waiting.into_iter().flatten() {
        let _ = reply.send(Err(e.clone()));
    }
}

/// The script's answer; `ts` is the one sent (a duplicate carries its own).
fn appended(value: Value, ts: i64) -> Result<Placed, StoreError> {
    let Value::Array(parts) = value else {
        return Err(StoreError(format!("append failed: {value:?}")));
    };
    let fresh = matches!(parts.first(), Some(Value::Int(1)));
    let at = parts.get(1).and_then(text).unwrap_or_default();
    let epoch = parts.get(2).and_then(text).unwrap_or_default();
    let (seq, ts) = match at.split_once(':') {
        Some((seq, ts)) => (seq.parse().ok(), ts.parse().ok()),
        None => (at.parse().ok(), Some(ts)),
    };
    match (seq, ts) {
        (Some(seq), Some(ts)) => Ok(Placed {
            seq,
            ts,
            epoch,
            fresh,
        }),
        _ => Err(StoreError(format!("append returned {at:?}"))),
    }
}

/// Keeps one pub/sub connection subscribed to every local room's channel
/// and routes what arrives to the room actors. After a reconnect, rooms
/// resynchronise (what was published meanwhile is lost to pub/sub).
async fn subscriber(cluster: Arc<Cluster>, mut requests: mpsc::UnboundedReceiver<Subscription>) {
    use futures_util::StreamExt;
    let mut first = true;
    loop {
        if cluster.stop.is_cancelled() {
            return;
        }
        let pubsub =
            match tokio::time::timeout(CALL_TIMEOUT, cluster.client.get_async_pubsub()).await {
                Ok(Ok(p)) => p,
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
        let (mut sink, mut stream) = pubsub.split();
        let mut channels: Vec<String> = cluster.locked().keys().map(|r| keys::channel(r)).collect();
        channels.push(keys::control(&cluster.node));
        if sink.subscribe(&channels).await.is_err() {
            continue;
        }
        if !first {
            info!("redis pub/sub is back: rooms resynchronise");
            for tx in cluster.room_senders() {
                let _ = tx.send(BusEvent::Resync).await;
            }
        }
        first = false;
        loop {
            tokio::select! {
                () = cluster.stop.cancelled() => return,
                request = requests.recv() => {
                    let done = match request {
                        None => return,
                        Some(Subscription::Room(room)) => sink.subscribe(keys::channel(&room)).await,
                        Some(Subscription::Gone(room)) => sink.unsubscribe(keys::channel(&room)).await,
                    };
                    if done.is_err() {
                        break;
                    }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    if msg.get_channel_name() == keys::control(&cluster.node) {
                        cluster.control(msg.get_payload_bytes());
                        continue;
                    }
                    let Some(room) = keys::room_of_channel(msg.get_channel_name()) else { continue };
                    let Some(remote) = parse_remote(room, msg.get_payload_bytes()) else {
                        debug!(room, "unreadable pub/sub payload");
                        continue;
                    };
                    if let Some(tx) = cluster.room_sender(room) {
                        // A full mailbox drops the event: messages are read
                        // back from the stream, presence on the next resync.
                        let _ = tx.try_send(remote.into_event());
                    }
                }
            }
        }
        warn!("redis pub/sub connection lost; reconnecting");
    }
}

/// What a health check found.
enum Probe {
    Usable,
    /// It answers but does not fsync every write, and that is not allowed.
    Lossy(String),
    Unreachable(StoreError),
}

/// Pings Redis (and reads its durability, unless lossy is allowed); on a
/// change, tells every room (degraded / back).
async fn health(cluster: Arc<Cluster>) {
    let mut every = ticker(HEALTH_EVERY);
    while next_tick(&cluster, &mut every).await {
        let probe = cluster.probe(false).await;
        let ok = matches!(probe, Probe::Usable);
        let lossy = matches!(probe, Probe::Lossy(_));
        if lossy != cluster.lossy.swap(lossy, Ordering::Relaxed)
            && let Probe::Lossy(why) = &probe
        {
            error!(
                %why,
                "redis does not fsync every write: refusing to store messages in it \
                 (run it with `appendfsync always`, or pass --redis-allow-lossy)"
            );
        }
        cluster.metrics.redis_up.set(i64::from(ok));
        if ok != cluster.healthy.swap(ok, Ordering::Relaxed) {
            if ok {
                info!("redis is reachable again");
                *cluster
                    .reachable_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
                let _ = cluster.heartbeat().await;
                cluster.retry_releases();
                cluster.retry_saves();
                cluster.reclaim_nicks().await;
            } else {
                warn!("redis is unreachable: rooms are degraded");
            }
            for tx in cluster.room_senders() {
                let _ = tx.send(BusEvent::Health(ok)).await;
            }
        }
    }
}

/// A ticker for a periodic task (late ticks are delayed, not bunched).
fn ticker(period: Duration) -> tokio::time::Interval {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every
}

/// Waits for the next tick; `false` once the cluster stops.
async fn next_tick(cluster: &Cluster, every: &mut tokio::time::Interval) -> bool {
    tokio::select! {
        () = cluster.stop.cancelled() => false,
        _ = every.tick() => true,
    }
}

/// Tells each room the head `seq` Redis has for it, so a room that missed
/// a publication reads the gap from the stream; retries writes that failed
/// while the health check still passed.
async fn heads(cluster: Arc<Cluster>) {
    let mut every = ticker(HEADS_EVERY);
    while next_tick(&cluster, &mut every).await {
        if !cluster.healthy() {
            continue;
        }
        // Writes that failed while the health check still passed.
        cluster.retry_releases();
        cluster.retry_saves();
        let rooms: Vec<(Arc<str>, mpsc::Sender<BusEvent>)> = cluster
            .locked()
            .iter()
            .filter_map(|(r, tx)| Some((r.clone(), tx.upgrade()?)))
            .collect();
        if !rooms.is_empty() {
            // Open here: listed as open in the cluster (a process whose
            // last member left may have taken a room off the list while
            // this one's members were on their way).
            let mut sadd = redis::cmd("SADD");
            sadd.arg(keys::ROOMS);
            for (room, _) in &rooms {
                sadd.arg(&**room);
            }
            cluster.fire(vec![sadd]);
        }
        for chunk in rooms.chunks(1_000) {
            let mut mget = redis::cmd("MGET");
            for (room, _) in chunk {
                mget.arg(keys::seq(room));
            }
            let Ok(heads) = cluster.call::<Vec<Option<u64>>>(&mget).await else {
                break;
            };
            for ((_, tx), head) in chunk.iter().zip(heads) {
                let _ = tx.try_send(BusEvent::Head(head.unwrap_or(0)));
            }
        }
    }
}

/// Drops messages older than `--retention-days` from every room's stream.
/// One node sweeps per period (whoever takes the period's lock), every
/// tenth of the age, between one second and one minute.
async fn expire(cluster: Arc<Cluster>, age: Duration) {
    let period = (age / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let lock_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    let mut every = ticker(period);
    while next_tick(&cluster, &mut every).await {
        if !cluster.healthy() {
            continue;
        }
        let mut lock = redis::cmd("SET");
        lock.arg(keys::EXPIRE_LOCK)
            .arg(&cluster.node)
            .arg("NX")
            .arg("PX")
            .arg(lock_ms.saturating_sub(50).max(1));
        if !matches!(cluster.call::<Option<String>>(&lock).await, Ok(Some(_))) {
            continue;
        }
        let Some(cutoff) = cluster.expiry_cutoff() else {
            return;
        };
        let mut cursor = 0u64;
        let mut removed = 0;
        loop {
            let mut scan = redis::cmd("SSCAN");
            scan.arg(keys::LOGS).arg(cursor).arg("COUNT").arg(500);
            let Ok((next, rooms)) = cluster.call::<(u64, Vec<String>)>(&scan).await else {
                break;
            };
            for room in rooms {
                match cluster.expire_room(&room, cutoff).await {
                    Ok(n) => removed += n,
                    Err(e) => debug!(%room, error = %e, "could not expire old messages"),
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if removed > 0 {
            debug!(removed, "expired messages older than the retention age");
        }
    }
}

/// Refreshes this node's heartbeat and reaps nodes whose heartbeat expired.
async fn nodes(cluster: Arc<Cluster>) {
    let mut every = ticker((cluster.config.node_ttl / 3).max(Duration::from_millis(100)));
    let mut holds = 0;
    while next_tick(&cluster, &mut every).await {
        if !cluster.healthy() {
            continue;
        }
        if let Err(e) = cluster.heartbeat().await {
            debug!(error = %e, "heartbeat failed");
            continue;
        }
        match cluster.sweep_holds(holds).await {
            Ok(next) => holds = next,
            Err(e) => debug!(error = %e, "could not sweep expired nickname holds"),
        }
        let Ok(all) = cluster
            .call::<Vec<String>>(redis::cmd("SMEMBERS").arg(keys::NODES))
            .await
        else {
            continue;
        };
        // After an outage nobody could refresh a heartbeat: give every
        // node a full period to do so before reaping anyone.
        let since = *cluster
            .reachable_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if since.elapsed() < cluster.config.node_ttl {
            continue;
        }
        for node in all.into_iter().filter(|n| *n != cluster.node) {
            let alive = cluster
                .call::<bool>(redis::cmd("EXISTS").arg(keys::node(&node)))
                .await
                .unwrap_or(true);
            if alive {
                continue;
            }
            match cluster.reap_node(&node, false).await {
                Ok(0) => {}
                Ok(n) => info!(%node, members = n - 1, "reaped a node that stopped"),
                Err(e) => debug!(%node, error = %e, "could not reap a node"),
            }
        }
    }
}

/// The room's reads start as tasks of their own (they hold the cluster).
impl Cluster {
    fn owned(&self) -> Result<Arc<Cluster>, StoreError> {
        self.me
            .upgrade()
            .ok_or_else(|| StoreError("cluster mode stopped".into()))
    }
}

impl Log for Cluster {
    fn append(&self, room: &str, entry: Entry) -> oneshot::Receiver<Result<Placed, StoreError>> {
        let key = entry.session.zip(entry.cid);
        self.append_body(room.into(), &entry.from, &entry.text, entry.ts, key)
    }

    fn snapshot(&self, room: &str, recent: usize) -> Read<Snapshot> {
        let (me, room) = (self.owned(), room.to_owned());
        Box::pin(async move { me?.read_snapshot(&room, recent).await })
    }

    fn range(&self, room: &str, from: u64, to: u64) -> Read<Vec<Msg>> {
        let (me, room) = (self.owned(), room.to_owned());
        Box::pin(async move { me?.read_range(&room, from, to).await })
    }

    fn before(&self, room: &str, before: u64, limit: usize) -> Read<Vec<Msg>> {
        let (me, room) = (self.owned(), room.to_owned());
        Box::pin(async move { me?.read_before(&room, before, limit).await })
    }

    fn expiry_cutoff(&self) -> Option<i64> {
        Cluster::expiry_cutoff(self)
    }

    fn kept_per_room(&self) -> Option<u64> {
        Some(self.config.retention)
    }
}

impl Bus for Cluster {
    fn node(&self) -> &str {
        &self.node
    }

    fn subscribe(&self, room: Arc<str>, to: mpsc::WeakSender<BusEvent>) {
        self.register(room, to);
    }

    fn unsubscribe(&self, room: &str) {
        self.unregister(room);
    }

    fn healthy(&self) -> bool {
        Cluster::healthy(self)
    }

    fn presence(
        &self,
        room: &str,
        conn: ConnId,
        kind: PresenceKind,
        nick: &str,
        old: Option<String>,
    ) {
        self.publish_presence(room, conn, kind, nick, old);
    }

    fn forget_member(&self, room: &str, key: String, nick: &str) {
        self.presence_by_key(room, key, PresenceKind::Leave, nick, None);
    }

    fn typing(&self, room: &str, nick: &str, on: bool) {
        self.publish_typing(room, nick, on);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_saves_keep_the_latest_per_session() {
        let save = |token: &str, order| UnsavedSession {
            token: token.into(),
            json: format!("{token}@{order}"),
            order,
        };
        let mut pending = PendingSaves::default();
        assert!(pending.keep(save("a", 2)));
        assert!(
            pending.keep(save("a", 1)),
            "older than what is kept: ignored"
        );
        assert!(pending.keep(save("b", 3)));
        // A newer save of `b` reached Redis: its older one is never made again.
        pending.settle(&save("b", 4));
        // An older one reaching Redis does not settle a newer one.
        pending.settle(&save("a", 0));
        let kept: Vec<String> = pending.take().into_iter().map(|s| s.json).collect();
        assert_eq!(kept, ["a@2"]);
        assert!(pending.take().is_empty(), "taken once");
    }

    #[test]
    fn logged_urls_have_no_password() {
        assert_eq!(
            redacted("redis://:s3cret@db.example:6380/2"),
            "redis://:***@db.example:6380/2"
        );
        assert_eq!(
            redacted("redis://app:p@ss@db/0"),
            "redis://app:***@db/0",
            "the last @ ends the user info"
        );
        for plain in ["redis://127.0.0.1:6379/0", "redis://user@h/0", "nonsense"] {
            assert_eq!(redacted(plain), plain);
        }
    }

    #[test]
    fn payloads_parse() {
        let Some(Remote::Msg(m)) = parse_remote(
            "r",
            br#"m42
{"epoch":"e","from":"ann","text":"hi","ts":7,"cid":"c1"}"#,
        ) else {
            panic!("a message");
        };
        assert_eq!(
            (m.seq, m.room.as_str(), m.epoch.as_str(), m.cid.as_deref()),
            (42, "r", "e", Some("c1"))
        );
        let Some(Remote::Presence(p)) = parse_remote(
            "r",
            br#"p{"node":"n","key":"n:1","kind":"leave","nick":"bo"}"#,
        ) else {
            panic!("presence");
        };
        assert_eq!((p.kind, p.nick.as_str()), (PresenceKind::Leave, "bo"));
        assert!(parse_remote("r", b"x").is_none());
        assert!(parse_remote("r", b"m12").is_none(), "no body");
    }

    #[test]
    fn append_replies_parse() {
        let fresh = appended(
            Value::Array(vec![
                Value::Int(1),
                Value::BulkString(b"5".to_vec()),
                Value::BulkString(b"e".to_vec()),
            ]),
            77,
        )
        .expect("fresh");
        assert!(fresh.fresh && fresh.seq == 5 && fresh.ts == 77);
        let dup = appended(
            Value::Array(vec![
                Value::Int(0),
                Value::BulkString(b"3:99".to_vec()),
                Value::BulkString(b"e".to_vec()),
            ]),
            77,
        )
        .expect("dup");
        assert!(!dup.fresh && dup.seq == 3 && dup.ts == 99);
        assert!(appended(Value::Nil, 0).is_err());
    }

    #[test]
    fn bodies_leave_the_epoch_to_the_script() {
        let body = serde_json::to_string(&Body {
            epoch: "ignored".into(),
            from: "a".into(),
            text: "t".into(),
            ts: 1,
            cid: None,
        })
        .expect("json");
        assert_eq!(body, r#"{"from":"a","text":"t","ts":1}"#);
    }
}
