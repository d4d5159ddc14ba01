//! Idle memory: many connections that say nothing; the server's memory per
//! connection, and its CPU once they have closed.

use super::open_many;
use crate::{client::Profile, process::ServerProc};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Figures of an idle-memory run.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    /// Idle connections held.
    pub connections: usize,
    /// Server RSS before they connected, bytes.
    pub rss_before: u64,
    /// Server RSS with all of them connected, bytes.
    pub rss_with: u64,
    /// (rss_with - rss_before) / connections, KiB.
    pub kib_per_conn: f64,
    /// Seconds to open them all.
    pub connect_secs: f64,
    /// Server CPU use (percent of one core) over the 2 s after they closed,
    /// once the closing itself is done (1 s).
    pub cpu_after_close_pct: f64,
}

/// `n` idle connections (rich: after `hello`, in no room).
pub async fn idle(server: &ServerProc, profile: Profile, n: usize) -> anyhow::Result<Idle> {
    // One connection first, so one-time allocations are not counted.
    let warm = open_many(server, profile, 1, false).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = server.rss_bytes();
    let start = Instant::now();
    let conns = open_many(server, profile, n, false).await?;
    let connect_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_with = server.rss_bytes();
    drop(conns);
    drop(warm);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu0 = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_after_close_pct = (server.cpu_seconds() - cpu0) / 2.0 * 100.0;
    Ok(Idle {
        connections: n,
        rss_before,
        rss_with,
        kib_per_conn: rss_with.saturating_sub(rss_before) as f64 / n.max(1) as f64 / 1024.0,
        connect_secs,
        cpu_after_close_pct,
    })
}
