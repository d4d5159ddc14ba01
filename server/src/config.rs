//! Server configuration: every limit and knob, with the defaults a chat
//! deployment wants. The same struct is the command line (`clap`) and what
//! tests build directly.

use clap::Parser;
use std::{net::SocketAddr, time::Duration};

/// Command line and configuration of the chat server.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "server",
    version,
    about = "Real-time chat server (websocket.io-rpc-v0.1)",
    group(clap::ArgGroup::new("shared").args(["redis", "redis_cluster"]))
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Largest WebSocket message accepted, in bytes (bigger: close 1009).
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Messages per second per connection (token bucket); 0 turns limiting off.
    #[arg(long, default_value_t = 20)]
    pub rate_limit: u32,

    /// Messages a connection may send at once before the rate applies
    /// (default: twice the rate).
    #[arg(long)]
    pub rate_burst: Option<u32>,

    /// Refused messages within 10 s after which the connection is closed
    /// with 1008 (default: five times the rate, at least 50).
    #[arg(long)]
    pub abuse_threshold: Option<u32>,

    /// Most simultaneous connections; more are closed with 1013.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// Messages kept per room with `--in-memory`; with `--redis`, the
    /// latest messages each room caches for joins and recovery.
    #[arg(long, default_value_t = 1_000)]
    pub history: usize,

    /// The origin browsers load the app from (repeatable), e.g.
    /// `https://chat.example.com`. Default: `http://` and the listening
    /// address (and `http://localhost:PORT` on a loopback address). The
    /// `Origin` of a WebSocket handshake must be one of these or of
    /// `--allowed-origin`; the `Host` header is never trusted for this.
    #[arg(long = "public-origin")]
    pub public_origins: Vec<String>,

    /// Origins allowed besides the public ones (repeatable), e.g.
    /// `http://127.0.0.1:8080`, or `http://127.0.0.1:*` for any port of a
    /// host. Requests without `Origin` (not from a browser) always pass.
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,

    /// Serve `/metrics` on this address instead of the public one.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Longest chat message, in characters.
    #[arg(long, default_value_t = 2_000)]
    pub max_text_chars: usize,

    /// Rooms one connection may be in at once.
    #[arg(long, default_value_t = 32)]
    pub max_rooms_per_connection: usize,

    /// Rooms open at once at most (a room with no members closes).
    #[arg(long, default_value_t = 10_000)]
    pub max_rooms: usize,

    /// Frames queued for one connection before it counts as too slow
    /// (then it is closed with 4008).
    #[arg(long, default_value_t = 4_096)]
    pub outbox_frames: usize,

    /// Bytes queued for one connection before it counts as too slow (then
    /// it is closed with 4008). Past a quarter of this (or of
    /// `--outbox-frames`) its rooms stop taking new posts until it catches up.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub outbox_bytes: usize,

    /// Seconds a member past its outbox's high-water mark may go without
    /// its socket taking anything before its rooms stop waiting for it (it
    /// is stuck, not slow; it is cut when its outbox overflows).
    #[arg(long, default_value_t = 0.5, value_parser = seconds)]
    pub stall_secs: f64,

    /// Seconds one socket write may take; a peer that stops reading is
    /// dropped after this.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub write_timeout_secs: f64,

    /// Seconds a client has to send its HTTP request head (before the
    /// upgrade, and between requests on a kept-alive connection).
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub header_timeout_secs: f64,

    /// Seconds a new WebSocket has to send its first frame.
    #[arg(long, default_value_t = 60.0, value_parser = seconds)]
    pub first_frame_timeout_secs: f64,

    /// Seconds graceful shutdown waits for connections before it drops them.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    pub shutdown_secs: f64,

    /// Requests of one connection still being answered (a `say` waiting for
    /// its commit, `long_runing_task`) at most; more get `rate_limited`.
    #[arg(long, default_value_t = 64)]
    pub max_inflight: usize,

    /// Bytes of any one reply at most (room states, history pages, `hello`
    /// with all its rooms): recovery that does not fit says `recovered: false`.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_reply_bytes: usize,

    /// Messages a cursor recovers at most; a longer gap says
    /// `recovered: false` and the client pages with `history`.
    #[arg(long, default_value_t = 1_000)]
    pub max_recovery: usize,

    /// Bytes of messages waiting for the store (SQLite's writer, or Redis),
    /// all rooms together; past it `say` answers `unavailable` at once.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub store_queue_bytes: usize,

    /// Messages per second one room takes ("slow mode"; 0: no limit).
    /// Posts over it get `rate_limited` (broadcasts are dropped).
    #[arg(long, default_value_t = 0)]
    pub room_rate: u32,

    /// Connections from one client address at most (IPv6: per /64), counted
    /// from the TCP accept; 0 turns the limit off.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// New rooms one client address may create per minute (a burst of as
    /// many); 0 turns the budget off.
    #[arg(long, default_value_t = 30)]
    pub rooms_per_ip_per_minute: u32,

    /// New sessions (`hello` without a known token) one client address may
    /// start per minute (a burst of as many); 0 turns the budget off.
    #[arg(long, default_value_t = 60)]
    pub sessions_per_ip_per_minute: u32,

    /// A reverse proxy whose `X-Forwarded-For` is believed (repeatable; an
    /// address or a CIDR block such as `10.0.0.0/8`). The client address is
    /// the last one in the header that is not a trusted proxy.
    #[arg(long = "trusted-proxy", value_parser = crate::addr::parse_net)]
    pub trusted_proxies: Vec<crate::addr::Net>,

    /// Seconds between keep-alive pings; a peer silent for two intervals is dropped.
    #[arg(long, default_value_t = 20.0, value_parser = seconds)]
    pub ping_interval_secs: f64,

    /// Read buffer per connection, in bytes: memory every idle connection
    /// holds. Chat messages fit in 1 KiB; bigger ones take several reads.
    #[arg(long, default_value_t = 1024)]
    pub read_buffer_bytes: usize,

    /// Where the history database lives (created on first start).
    #[arg(long, default_value = "data")]
    pub data_dir: std::path::PathBuf,

    /// Keep history in memory only (lost on restart) instead of on disk.
    #[arg(long)]
    pub in_memory: bool,

    /// Messages kept per room on disk (or in Redis with `--redis`).
    #[arg(long, default_value_t = 100_000)]
    pub retention_messages: u64,

    /// Days a message is kept, on disk or in Redis (default: no age limit;
    /// fractions allowed: 0.5 is twelve hours).
    #[arg(long, value_parser = days)]
    pub retention_days: Option<f64>,

    /// Seconds a disconnected session keeps its rooms for a resuming client.
    #[arg(long, default_value_t = 3_600)]
    pub session_ttl_secs: u64,

    /// Who may sign up: `open` (anyone), `invite` (with an invite an
    /// administrator made) or `closed` (nobody; accounts already made
    /// still sign in).
    #[arg(long, value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,

    /// Whether people who are not signed in may chat: `allow` (as guests,
    /// and the original demo's clients) or `deny` (their socket is closed
    /// with "sign in to chat here"). Needs accounts (not in cluster mode).
    #[arg(long, value_enum, default_value_t = Guests::Allow)]
    pub guests: Guests,

    /// Password hashes (sign-up, sign-in) computed at once at most; more
    /// wait their turn. Each takes 19 MiB and tens of milliseconds of a
    /// core. Default: half the cores (at least one), so a flood of
    /// sign-ins leaves the chat the other half.
    #[arg(long, default_value_t = half_the_cores())]
    pub password_hashes: usize,

    /// Password hashes that may wait for their turn; more sign-ins and
    /// sign-ups are refused at once (503, `Retry-After: 1`), so a flood of
    /// them queues no work.
    #[arg(long, default_value_t = 32)]
    pub password_queue: usize,

    /// Searches this process runs at once; one more answers "search is
    /// busy" at once (at least 1).
    #[arg(long, default_value_t = 2)]
    pub search_running: usize,

    /// Longest a search may take, in seconds; past it the search answers
    /// "took too long".
    #[arg(long, default_value_t = 5.0)]
    pub search_timeout_secs: f64,

    /// Seconds a sign-in session lives unused (default 7 days).
    #[arg(long, default_value_t = 7 * 86_400)]
    pub signin_idle_secs: u64,

    /// Seconds a sign-in session lives at most, however used (default 30
    /// days).
    #[arg(long, default_value_t = 30 * 86_400)]
    pub signin_max_secs: u64,

    /// The session cookie is `Secure` and named `__Host-chat_session`: set
    /// it when a proxy in front serves the chat over HTTPS.
    #[arg(long)]
    pub secure_cookies: bool,

    /// Cluster mode: share rooms with every server process using this
    /// Redis (`redis://127.0.0.1:6379/0`). History lives in Redis then
    /// (`--retention-messages` per room); `--data-dir` is not used.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,

    /// Cluster mode on a sharded Redis Cluster: its seed nodes,
    /// comma-separated (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`).
    /// Everything else as with `--redis` (TLS, passwords, durability).
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    pub redis_cluster: Option<Vec<String>>,

    /// Cluster mode over TLS (`rediss://`): PEM file of the authority that
    /// signed Redis's certificate (default: the system's trusted roots).
    #[arg(long, value_name = "FILE", requires = "shared")]
    pub redis_ca: Option<std::path::PathBuf>,

    /// Cluster mode over TLS: this server's certificate (PEM), for a Redis
    /// that checks its clients (`tls-auth-clients`); needs `--redis-key`.
    #[arg(long, value_name = "FILE", requires_all = ["shared", "redis_key"])]
    pub redis_cert: Option<std::path::PathBuf>,

    /// Cluster mode over TLS: the private key of `--redis-cert` (PEM).
    #[arg(long, value_name = "FILE", requires = "redis_cert")]
    pub redis_key: Option<std::path::PathBuf>,

    /// Cluster mode: accept a Redis that does not fsync every write
    /// (`appendonly no`, or `appendfsync everysec`/`no`), whose crash can
    /// lose messages it acknowledged. Without this flag such a Redis stops
    /// start-up, and one that turns lossy later is treated as unavailable.
    #[arg(long, requires = "shared")]
    pub redis_allow_lossy: bool,

    /// Tests only: every commit of the history store first waits this many
    /// milliseconds (a slow disk).
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_commit_delay_ms: u64,

    /// Cluster mode: seconds after which a process that stopped answering
    /// has its members removed from presence.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    pub node_ttl_secs: f64,
}

/// A duration in seconds: a finite number above zero, at most a day.
fn seconds(raw: &str) -> Result<f64, String> {
    positive(raw, "seconds", 86_400.0)
}

/// A retention age in days: a finite number above zero, at most a century.
fn days(raw: &str) -> Result<f64, String> {
    positive(raw, "days", 36_500.0)
}

/// A finite number of `unit`s above zero and at most `max`.
fn positive(raw: &str, unit: &str, max: f64) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("'{raw}' is not a number of {unit}"))?;
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(value)
    } else {
        Err(format!("'{raw}' must be above 0 and at most {max} {unit}"))
    }
}

impl Default for Config {
    fn default() -> Self {
        // The defaults above are the single source of truth.
        Config::parse_from(["server"])
    }
}

impl Config {
    /// Cluster-mode settings, when `--redis` or `--redis-cluster` is given.
    pub fn cluster(&self) -> Option<ClusterConfig> {
        let redis = match (&self.redis, &self.redis_cluster) {
            (Some(url), _) => Redis::One(url.clone()),
            (None, Some(seeds)) => Redis::Cluster(seeds.clone()),
            (None, None) => return None,
        };
        Some(ClusterConfig {
            redis,
            node_ttl: Duration::from_secs_f64(self.node_ttl_secs.max(0.3)),
            retention: self.retention_messages,
            max_age: self.max_age(),
            ca: self.redis_ca.clone(),
            identity: self.redis_cert.clone().zip(self.redis_key.clone()),
            session_ttl_secs: self.session_ttl_secs,
            queue_bytes: self.store_queue_bytes,
            allow_lossy: self.redis_allow_lossy,
        })
    }

    /// How long a message is kept (`--retention-days`), if limited.
    pub fn max_age(&self) -> Option<Duration> {
        self.retention_days
            .map(|days| Duration::from_secs_f64(days * 86_400.0))
    }

    /// How long a member may stay past its outbox's high-water mark.
    pub fn stall(&self) -> Duration {
        Duration::from_secs_f64(self.stall_secs)
    }

    /// Longest a search may take.
    pub fn search_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.search_timeout_secs.max(0.001))
    }

    /// Longest time one socket write may take.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.write_timeout_secs)
    }

    /// Longest time for an HTTP request head.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_timeout_secs)
    }

    /// Longest time before a new socket's first frame.
    pub fn first_frame_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.first_frame_timeout_secs)
    }

    /// Longest graceful shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_secs)
    }

    /// Keep-alive interval.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs_f64(self.ping_interval_secs.max(0.01))
    }

    /// Burst allowance of the rate limiter.
    pub fn burst(&self) -> u32 {
        self.rate_burst
            .unwrap_or(self.rate_limit.saturating_mul(2))
            .max(1)
    }

    /// Refusals within the abuse window that close the connection.
    pub fn abuse_limit(&self) -> u32 {
        self.abuse_threshold
            .unwrap_or(self.rate_limit.saturating_mul(5).max(50))
    }
}

/// Which Redis cluster mode uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redis {
    /// One Redis (with replicas or Sentinel if wanted): `redis://host:port/db`.
    One(String),
    /// A sharded Redis Cluster, by its seed nodes.
    Cluster(Vec<String>),
}

impl Redis {
    /// Every URL given: the one Redis, or the seeds.
    pub fn urls(&self) -> &[String] {
        match self {
            Redis::One(url) => std::slice::from_ref(url),
            Redis::Cluster(seeds) => seeds,
        }
    }
}

/// Cluster-mode settings.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Where the Redis is.
    pub redis: Redis,
    /// A node whose heartbeat is this old is removed from presence.
    pub node_ttl: Duration,
    /// Messages each room's stream keeps.
    pub retention: u64,
    /// How long a message is kept, if limited (`--retention-days`).
    pub max_age: Option<Duration>,
    /// `rediss://`: PEM of the authority to trust instead of the system's.
    pub ca: Option<std::path::PathBuf>,
    /// `rediss://`: this server's certificate and key (PEM), for mutual TLS.
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Seconds a saved session lives.
    pub session_ttl_secs: u64,
    /// Bytes of messages waiting for the writer at most.
    pub queue_bytes: usize,
    /// Accept a Redis that does not fsync every write (`--redis-allow-lossy`).
    pub allow_lossy: bool,
}

/// Half the cores this process may use, at least one.
fn half_the_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Who may sign up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone.
    Open,
    /// Whoever has an invite an administrator made.
    Invite,
    /// Nobody.
    Closed,
}

/// Whether people who are not signed in may chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Guests {
    /// As guests.
    Allow,
    /// Not at all.
    Deny,
}

#[cfg(test)]
mod tests;
