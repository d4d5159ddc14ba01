//! Cluster mode (`--redis URL`, or `--redis-cluster SEEDS` for a sharded
//! Redis Cluster): many server processes share rooms through Redis. The
//! same commands run on both: every key carries the hash tag of the one
//! slot it lives in, and no script or transaction spans two (see `keys`).
//!
//! - **Order.** A room's next `seq` comes from `INCR` inside one Lua script
//!   that also appends the message to the room's stream (entry id
//!   `{seq}-0`), records its `(session, cid)` and publishes it on the room's
//!   channel. Each process's room actor delivers to its own members in `seq`
//!   order: what pub/sub brings out of order waits, and a gap is read back
//!   from the stream (pub/sub may drop; the stream does not).
//! - **Catch-up.** Every second each process reads the head `seq` of its
//!   rooms (`MGET`, split by slot on a cluster); a room behind it reads the
//!   gap from the stream. So
//!   after any outage every process converges without gaps.
//! - **Presence.** Members are a hash per room (`{node}:{conn}` → nick);
//!   changes are published. Each node refreshes a heartbeat key; a node whose
//!   key expires is reaped by whichever live node sees it first: its members
//!   leave (published, room by room) and its nicknames are freed. A node
//!   that finds it was reaped while alive puts its members back.
//! - **Redis down.** A health check (every 500 ms) marks the cluster
//!   unhealthy: `say` answers `unavailable` at once, rooms tell their
//!   members `room_status: degraded`, and when Redis is back rooms re-read
//!   their state and catch up.
//!
//! Nothing here blocks a room actor: reads run as tasks that send their
//! result to the actor, writes go through one batching writer task.
//!
//! One job per file: `connection` (plain or TLS), `codec` (what goes over
//! Redis), `writer` (the batching writer), `pubsub` (channels to rooms),
//! `reads` (snapshots, ranges, the rooms list, presence and typing out),
//! `nicks`, `sessions`, `health` (and `durability`), `tasks` (heads, age
//! expiry, heartbeats and reaping), `ports` (the room pipeline's `Log` and
//! `Bus`), `accounts` (accounts, sign-ins, invites and access rules),
//! `keys` and `scripts`.
//!
//! - **Accounts.** Stored in Redis like history; what one process does to
//!   an account reaches the others' connections on one channel every
//!   process listens to (`keys::NOTICES`): a sign-out closes the session's
//!   sockets everywhere, an invitation reaches the account's sockets
//!   wherever they are. A moderator's kick or ban goes on the room's own
//!   channel, to every process with the room open.

mod accounts;
mod codec;
mod connection;
mod durability;
mod error;
mod health;
mod keys;
mod nicks;
mod ports;
mod pubsub;
mod reads;
mod scripts;
mod search;
mod sessions;
mod tasks;
mod writer;

pub use accounts::RedisAccounts;
pub use error::Error;

use codec::*;
use connection::*;
use health::*;
use pubsub::*;
use sessions::*;
use tasks::*;
use writer::*;

use crate::{
    config::{ClusterConfig, Redis},
    history::SavedSession,
    identity::{Nicks, Sessions},
    ids::ConnId,
    log::{
        Bus, BusEvent, Entry, Log, Notice, Placed, Read, Refusal, Removal, Snapshot, StoreError,
    },
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

/// This process's membership in the cluster.
pub struct Cluster {
    /// What it counts.
    pub metrics: ClusterMetrics,
    /// Itself, for the tasks its reads start.
    me: std::sync::Weak<Cluster>,
    node: String,
    config: ClusterConfig,
    /// Where pub/sub connects: the one Redis, or each seed of a cluster in
    /// turn (a cluster's classic pub/sub reaches every node).
    subscribers: Vec<Client>,
    conn: Conn,
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
    /// What other processes said about accounts (sign-outs, invites).
    notices: mpsc::UnboundedSender<Notice>,
    notices_rx: Mutex<Option<mpsc::UnboundedReceiver<Notice>>>,
    /// Accounts and access rules, on the same connection.
    accounts: Arc<RedisAccounts>,
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
    sweep_holds: Script,
    reap_room: Script,
    reap_node: Script,
    expire: Script,
    stop: CancellationToken,
}

impl Cluster {
    /// Connects (lazily: the server starts even while Redis is down) and
    /// starts the writer, subscriber, heartbeat and health tasks.
    pub async fn start(config: ClusterConfig) -> Result<Arc<Self>, StoreError> {
        let conn = Conn::open(&config)?;
        let subscribers = config
            .redis
            .urls()
            .iter()
            .map(|url| client(&config, url))
            .collect::<Result<Vec<_>, _>>()?;
        let (ops, ops_rx) = mpsc::channel(WRITE_QUEUE);
        let (subscribe, subscribe_rx) = mpsc::unbounded_channel();
        let (takeovers, takeovers_rx) = mpsc::unbounded_channel();
        let (notices, notices_rx) = mpsc::unbounded_channel();
        let accounts = Arc::new(RedisAccounts::on(conn.clone()));
        let cluster = Arc::new_cyclic(|me| Self {
            metrics: ClusterMetrics::default(),
            me: me.clone(),
            node: format!("{:016x}", rand::random::<u64>()),
            config,
            subscribers,
            conn,
            ops,
            healthy: AtomicBool::new(false),
            lossy: AtomicBool::new(false),
            rooms: Mutex::new(HashMap::new()),
            queued: std::sync::atomic::AtomicUsize::new(0),
            takeovers,
            takeovers_rx: Mutex::new(Some(takeovers_rx)),
            notices,
            notices_rx: Mutex::new(Some(notices_rx)),
            accounts,
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
            sweep_holds: Script::new(scripts::SWEEP_HOLDS),
            reap_room: Script::new(scripts::REAP_ROOM),
            reap_node: Script::new(scripts::REAP_NODE),
            expire: Script::new(scripts::EXPIRE),
            stop: CancellationToken::new(),
        });
        match cluster.probe(true).await {
            Probe::Usable => match cluster.heartbeat().await {
                Ok(_) => {
                    cluster.healthy.store(true, Ordering::Relaxed);
                    cluster.metrics.redis_up.set(1);
                }
                Err(e) => {
                    warn!(error = %e, "redis is not reachable yet; rooms are degraded until it is")
                }
            },
            Probe::Lossy(why) => {
                return Err(Error::Lossy {
                    redis: redacted_all(&cluster.config.redis),
                    why,
                }
                .into());
            }
            Probe::Unreachable(e) => {
                warn!(error = %e, "redis is not reachable yet; rooms are degraded until it is")
            }
        }
        info!(node = %cluster.node, redis = %redacted_all(&cluster.config.redis), "cluster mode");
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

    /// Accounts, sign-in sessions and rooms' access rules, shared by every
    /// process.
    pub fn accounts(&self) -> Arc<RedisAccounts> {
        self.accounts.clone()
    }

    /// This process's node id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A Redis call that gives up after `limit`; failures are counted.
    async fn bounded<T>(
        &self,
        limit: Duration,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(limit, call).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(Error::TimedOut.into()),
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

    /// Leaves the cluster: this node's members leave their rooms and its
    /// nicknames are freed, now rather than when its heartbeat expires.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        if let Err(e) = self.reap(&self.node, true).await {
            debug!(error = %e, "could not leave the cluster cleanly; the others will reap this node");
        }
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
            kind: None,
            of: None,
            author: None,
            changed: None,
            deleted: false,
            reply: None,
        })
        .expect("json");
        assert_eq!(body, r#"{"from":"a","text":"t","ts":1}"#);
    }
}
