//! What runs, at which size: the full and quick sizes, the servers and
//! profiles each scenario runs against, this server's flags, and the load
//! of the fan-out and latency scenarios.

use crate::{
    client::Profile,
    process::Kind,
    scenario::{Load, Pace},
};
use std::time::Duration;

/// How big each scenario runs.
pub struct Sizes {
    /// Fan-out: clients in the room.
    pub fanout_clients: usize,
    /// Fan-out: messages sent.
    pub fanout_messages: u32,
    /// Bytes per message (fan-out and latency).
    pub bytes: usize,
    /// Latency: clients in the room.
    pub latency_clients: usize,
    /// Latency: one message every this long.
    pub latency_every: Duration,
    /// Latency: for this many seconds.
    pub latency_secs: u32,
    /// Idle: connections held.
    pub idle: usize,
    /// Slow consumers: clients in the room (one sends).
    pub slow_clients: usize,
    /// Slow consumers: clients that never read.
    pub stuck: usize,
    /// Slow consumers: messages sent.
    pub slow_messages: u32,
    /// Slow consumers: bytes per message.
    pub slow_bytes: usize,
    /// Storm: connections attempted at most.
    pub storm_attempts: usize,
    /// Storm: clients connected across the restart.
    pub storm_clients: usize,
    /// Search: rooms filled.
    pub search_rooms: usize,
    /// Search: messages per room.
    pub search_per_room: usize,
    /// Search: searches timed per kind of query and server.
    pub search_samples: usize,
    /// Any run ends by then at the latest.
    pub deadline: Duration,
}

/// The full run.
pub const FULL: Sizes = Sizes {
    fanout_clients: 1_000,
    fanout_messages: 10_000,
    bytes: 100,
    latency_clients: 1_000,
    latency_every: Duration::from_millis(10),
    latency_secs: 10,
    idle: 10_000,
    slow_clients: 1_000,
    stuck: 10,
    slow_messages: 10_000,
    // 10 MB per client: more than a stuck client's socket buffers and its
    // outbox can hold, so the server has to deal with it.
    slow_bytes: 1_000,
    storm_attempts: 5_000,
    storm_clients: 1_000,
    search_rooms: 20,
    search_per_room: 5_000,
    search_samples: 30,
    deadline: Duration::from_secs(120),
};

/// `--quick`: every scenario at a tiny size, to prove the harness works.
pub const QUICK: Sizes = Sizes {
    fanout_clients: 20,
    fanout_messages: 300,
    bytes: 100,
    latency_clients: 10,
    latency_every: Duration::from_millis(10),
    latency_secs: 1,
    idle: 200,
    slow_clients: 20,
    stuck: 2,
    slow_messages: 300,
    slow_bytes: 100,
    storm_attempts: 200,
    storm_clients: 20,
    search_rooms: 4,
    search_per_room: 500,
    search_samples: 3,
    deadline: Duration::from_secs(30),
};

/// Which servers and profiles each scenario runs with.
pub const TARGETS: [(Kind, Profile); 5] = [
    (Kind::Ours, Profile::Seed),
    (Kind::Ours, Profile::Rich),
    (Kind::Original, Profile::Seed),
    (Kind::Batched, Profile::Seed),
    (Kind::Broadcast, Profile::Seed),
];

/// The flags this server runs with (none for the baselines): no limits
/// in the way of the load, and in memory unless `durable_dir` is given.
pub fn server_args(kind: Kind, durable_dir: Option<&std::path::Path>) -> Vec<String> {
    if kind != Kind::Ours {
        return Vec::new();
    }
    let mut args: Vec<String> = [
        "--rate-limit",
        "0",
        "--max-connections",
        "30000",
        "--max-rooms",
        "30000",
        // Every load client is 127.0.0.1, and idle ones say nothing.
        "--max-connections-per-ip",
        "0",
        "--rooms-per-ip-per-minute",
        "0",
        "--sessions-per-ip-per-minute",
        "0",
        "--first-frame-timeout-secs",
        "3600",
        // The rich sender keeps 256 `say`s in flight.
        "--max-inflight",
        "1024",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Ok(extra) = std::env::var("BENCH_SERVER_ARGS") {
        args.extend(extra.split_whitespace().map(str::to_owned));
    }
    match durable_dir {
        Some(dir) => {
            args.push("--data-dir".into());
            args.push(dir.display().to_string());
        }
        None => args.push("--in-memory".into()),
    }
    args
}

/// Loads of the fan-out and latency scenarios.
pub fn load_of(scenario: &str, sizes: &Sizes) -> Load {
    match scenario {
        "latency" => Load {
            clients: sizes.latency_clients,
            stuck: 0,
            messages: u32::try_from(sizes.latency_every.as_millis())
                .map_or(0, |t| sizes.latency_secs * 1000 / t.max(1)),
            bytes: sizes.bytes,
            pace: Pace::Every(sizes.latency_every),
            deadline: sizes.deadline,
        },
        _ => Load {
            clients: sizes.fanout_clients,
            stuck: 0,
            messages: sizes.fanout_messages,
            bytes: sizes.bytes,
            pace: Pace::Flood,
            deadline: sizes.deadline,
        },
    }
}
