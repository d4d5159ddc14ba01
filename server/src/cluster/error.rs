//! What can go wrong in cluster mode: setting up, or talking to Redis.

use crate::log::StoreError;
use std::{io, path::PathBuf};

/// Cluster mode's failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command or pipeline failed (connection lost, refused, …).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A reply is not of the type the command answers.
    #[error("redis: {0}")]
    Parse(#[from] redis::ParsingError),
    /// Redis answered a command with an error.
    #[error("redis: {0:?}")]
    Server(redis::ServerError),
    /// Redis did not answer in time.
    #[error("redis: timed out")]
    TimedOut,
    /// A pipeline came back without this command's answer.
    #[error("redis: no answer")]
    NoAnswer,
    /// Redis is known to be down: the write is refused at once.
    #[error("redis: not reachable")]
    NotReachable,
    /// Too much is already waiting for Redis.
    #[error("redis: the write queue is full")]
    QueueFull,
    /// A TLS file named on the command line cannot be read.
    #[error("cannot read {flag} {}: {source}", path.display())]
    ReadFile {
        flag: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Some seed URLs are `redis://` and some `rediss://`.
    #[error("mixed redis:// and rediss:// seed URLs: use one scheme")]
    MixedSchemes,
    /// TLS files given for a plain `redis://` URL.
    #[error("--redis-ca, --redis-cert and --redis-key need a rediss:// URL")]
    TlsWithoutRediss,
    /// The TLS client cannot be built.
    #[error("TLS set-up: {0}")]
    Tls(redis::RedisError),
    /// The Redis Cluster client cannot be built.
    #[error("redis cluster: {0}")]
    ClusterClient(redis::RedisError),
    /// The Redis does not fsync every write, and losing acknowledged
    /// messages was not allowed.
    #[error(
        "refusing the Redis at {redis}: {why}. Acknowledged messages must survive a \
         Redis crash: run it with `appendonly yes` and `appendfsync always`, or \
         pass --redis-allow-lossy if losing them is intended"
    )]
    Lossy { redis: String, why: String },
    /// A stream read answered with something that is not a stream.
    #[error("unexpected stream reply: {0:?}")]
    StreamReply(redis::Value),
    /// The append script answered with something that is not a place.
    #[error("append failed: {0:?}")]
    AppendReply(redis::Value),
    /// The append script's position is not `seq[:ts]`.
    #[error("append returned {0:?}")]
    Position(String),
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        StoreError::failed(e)
    }
}
