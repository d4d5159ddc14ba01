//! Connect storm and restart: connections opened as fast as they go, then
//! a restart under connected clients, timed until every one is back (rich:
//! resumed, recovering what it missed).

use super::{CONNECT_CONCURRENCY, open_many};
use crate::{
    client::{self, Joined, Profile},
    process::ServerProc,
};
use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Rich storm: messages said before the restart, which the others recover.
const MISSED: u32 = 5;

/// Figures of a connect-storm run.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    /// Connections attempted at most.
    pub attempted: usize,
    /// Connections that opened before the first error.
    pub opened: usize,
    /// Connection errors (the storm stops at the first).
    pub errors: usize,
    /// Opened connections per second.
    pub per_sec: f64,
    /// Clients connected when the server restarted.
    pub reconnect_clients: usize,
    /// From the restart to every client back (rich: resumed).
    pub reconnect_secs: f64,
    /// Rich: clients whose room came back with `recovered: true`.
    pub recovered: usize,
}

/// Opens up to `attempts` connections as fast as possible (stopping at the
/// first error), then restarts the server under `clients` connected
/// clients and times their return.
pub async fn storm(
    server: &mut ServerProc,
    profile: Profile,
    attempts: usize,
    clients: usize,
) -> anyhow::Result<Storm> {
    let addr = server.addr;
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let opened: Vec<Joined> = futures_util::stream::iter(0..attempts)
        .map(|_| {
            let failed = failed.clone();
            async move {
                if failed.load(Ordering::Relaxed) > 0 {
                    return None;
                }
                match client::open(addr, profile, false, None).await {
                    Ok((j, _)) => Some(j),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            }
        })
        .buffer_unordered(256)
        .filter_map(|j| async move { j })
        .collect()
        .await;
    let secs = start.elapsed().as_secs_f64();
    let count = opened.len();
    drop(opened);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut before = open_many(server, profile, clients, true).await?;
    // Rich: messages the others miss, so recovering them means something.
    if profile == Profile::Rich
        && let Some(first) = before.first_mut()
    {
        for i in 0..MISSED {
            let body = serde_json::json!({"room": client::ROOM, "text": format!("missed {i}"), "cid": format!("m{i}")});
            client::call(&mut first.ws, 100 + i, "say", &body).await?;
        }
        // Sessions are stored beside messages; give the writer its commit.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    type Resume = (Option<String>, Option<(String, u64)>);
    let resume: Vec<Resume> = before
        .iter()
        .map(|j| (j.session.clone(), j.cursor.clone()))
        .collect();
    let restarted = Instant::now();
    server.restart().await.context("restarting the server")?;
    drop(before);
    let addr = server.addr;
    let back: Vec<anyhow::Result<bool>> = futures_util::stream::iter(resume)
        .map(|(session, cursor)| async move {
            let until = Instant::now() + Duration::from_secs(60);
            loop {
                let resume = session.as_deref().zip(cursor.as_ref());
                match client::open(addr, profile, true, resume).await {
                    Ok((j, recovered)) => {
                        drop(j.ws);
                        return Ok(recovered);
                    }
                    Err(e) if Instant::now() > until => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let reconnect_secs = restarted.elapsed().as_secs_f64();
    let mut recovered = 0;
    for r in back {
        if r.context("reconnecting after the restart")? {
            recovered += 1;
        }
    }
    Ok(Storm {
        attempted: attempts,
        opened: count,
        errors: failed.load(Ordering::Relaxed),
        per_sec: count as f64 / secs.max(1e-6),
        reconnect_clients: clients,
        reconnect_secs,
        recovered,
    })
}
