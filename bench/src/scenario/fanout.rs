//! Fan-out and latency: one room, one sender, every other client receiving
//! (optionally some that never read, optionally over several processes);
//! distinct deliveries per second, losses, duplicates, reordering, and
//! latency percentiles when paced.

use super::{
    open_many, open_many_with,
    receive::{Shared, WARMUP, WARMUP_IDS, receive},
    stats::Percentiles,
};
use crate::{
    client::{self, Profile},
    process::ServerProc,
};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

/// `say`s a rich sender keeps unacknowledged at most.
const RICH_WINDOW: usize = 256;
/// A run with no delivery for this long is over.
const IDLE: Duration = Duration::from_secs(5);

/// Figures of a fan-out run.
#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    /// Clients receiving (the sender is one of them).
    pub clients: usize,
    /// Clients that never read (slow-consumer runs).
    pub stuck: usize,
    /// Messages sent.
    pub messages: u32,
    /// Message size in bytes.
    pub bytes: usize,
    /// Distinct messages received, over all healthy clients.
    pub delivered: u64,
    /// Expected deliveries minus distinct ones.
    pub lost: u64,
    /// Messages received twice.
    pub duplicates: u64,
    /// Messages received after a later one.
    pub reordered: u64,
    /// `say`s the server refused (rich).
    pub refused: u64,
    /// Healthy clients that got every message.
    pub complete: usize,
    /// From the first send to the last client complete (or the end).
    pub secs: f64,
    /// Distinct deliveries per second.
    pub per_sec: f64,
    /// Server CPU seconds over the run.
    pub server_cpu_secs: f64,
    /// Latency percentiles (latency runs only), microseconds.
    pub latency_us: Option<Percentiles>,
}

/// How the sender paces itself.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as the socket accepts.
    Flood,
    /// One message every this long.
    Every(Duration),
}

/// The shape of a fan-out run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Clients in the room (one of them sends).
    pub clients: usize,
    /// Clients in the room that never read.
    pub stuck: usize,
    /// Messages sent.
    pub messages: u32,
    /// Bytes per message (at least 30).
    pub bytes: usize,
    /// How the sender paces itself.
    pub pace: Pace,
    /// The run ends by then at the latest.
    pub deadline: Duration,
}

/// Resolves once no delivery was counted for [`IDLE`], or at `hard`.
async fn stalled(shared: Arc<Shared>, hard: Instant) {
    let mut last = shared.delivered.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = shared.delivered.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        if last_change.elapsed() > IDLE || Instant::now() > hard {
            return;
        }
    }
}

/// `load.clients` clients in one room (one of them sends), plus
/// `load.stuck` clients that never read.
pub async fn fanout(server: &ServerProc, profile: Profile, load: Load) -> anyhow::Result<Fanout> {
    fanout_across(&[server], profile, load).await
}

/// [`fanout`] with the room's clients spread evenly over several server
/// processes (a cluster); the sender is on the first.
pub async fn fanout_across(
    servers: &[&ServerProc],
    profile: Profile,
    load: Load,
) -> anyhow::Result<Fanout> {
    let Load {
        clients,
        stuck,
        messages,
        bytes,
        pace,
        deadline,
    } = load;
    let Some(first) = servers.first() else {
        bail!("no server to run against");
    };
    let share = |n: usize, i: usize| n / servers.len() + usize::from(i < n % servers.len());
    let mut receivers = Vec::new();
    let mut stuck_clients = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        receivers
            .extend(open_many(server, profile, share(clients.saturating_sub(1), i), true).await?);
        stuck_clients.extend(open_many_with(server, profile, share(stuck, i), true, true).await?);
    }
    let (sender, _) = client::open(first.addr, profile, true, None).await?;
    let window = (profile == Profile::Rich).then(|| Arc::new(Semaphore::new(RICH_WINDOW)));
    let shared = Arc::new(Shared {
        warmed: AtomicUsize::new(0),
        warm: Notify::new(),
        delivered: AtomicU64::new(0),
        window: window.clone(),
        refused: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let keep_latency = matches!(pace, Pace::Every(_));
    let (mut sink, sender_stream) = sender.ws.split();
    let mut tasks = Vec::with_capacity(clients);
    for j in receivers
        .into_iter()
        .map(|j| j.ws.split().1)
        .chain([sender_stream])
    {
        tasks.push(tokio::spawn(receive(
            j,
            profile,
            messages,
            shared.clone(),
            stop_rx.clone(),
            keep_latency,
        )));
    }

    // Warm up until every receiver is in.
    let warm_until = Instant::now() + Duration::from_secs(30);
    let mut warm_id = WARMUP_IDS;
    while shared.warmed.load(Ordering::Relaxed) < clients {
        if Instant::now() > warm_until {
            bail!(
                "only {} of {clients} clients got the warm-up message",
                shared.warmed.load(Ordering::Relaxed)
            );
        }
        warm_id += 1;
        let text = client::body(WARMUP, 0, bytes.max(30));
        sink.send(Message::Binary(client::send_frame(profile, warm_id, text)))
            .await?;
        let _ = tokio::time::timeout(Duration::from_millis(100), shared.warm.notified()).await;
    }
    // Let the warm-up traffic drain.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let cpu = || servers.iter().map(|s| s.cpu_seconds()).sum::<f64>();
    let cpu_before = cpu();
    let start = Instant::now();
    let send = async {
        let mut ticker = match pace {
            Pace::Every(t) => Some(tokio::time::interval(t)),
            Pace::Flood => None,
        };
        for i in 0..messages {
            if let Some(t) = &mut ticker {
                t.tick().await;
            }
            if let Some(w) = &window {
                w.acquire().await?.forget();
            }
            let text = client::body(i, client::now_us(), bytes.max(30));
            sink.send(Message::Binary(client::send_frame(profile, i + 10, text)))
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let all_done = futures_util::future::join_all(tasks);
    tokio::pin!(all_done);
    let sent = tokio::select! {
        r = send => r,
        () = stalled(shared.clone(), start + deadline) => Ok(()),
    };
    if let Err(e) = sent {
        let _ = stop_tx.send(true);
        return Err(e.context("sending"));
    }
    // Every receiver finishes by itself, or stops once nothing moves.
    let tallies = tokio::select! {
        t = &mut all_done => t,
        () = stalled(shared.clone(), start + deadline) => {
            let _ = stop_tx.send(true);
            all_done.await
        }
    };
    let ended = Instant::now();
    let cpu = cpu() - cpu_before;
    drop(stuck_clients);
    let mut fan = Fanout {
        clients,
        stuck,
        messages,
        bytes,
        delivered: 0,
        lost: 0,
        duplicates: 0,
        reordered: 0,
        refused: shared.refused.load(Ordering::Relaxed),
        complete: 0,
        secs: 0.0,
        per_sec: 0.0,
        server_cpu_secs: cpu,
        latency_us: None,
    };
    let mut last_done = start;
    let mut latencies = Vec::new();
    for t in tallies {
        let t = t.context("receiver task")?;
        fan.delivered += t.unique;
        fan.duplicates += t.duplicates;
        fan.reordered += t.reordered;
        if let Some(at) = t.done_at {
            fan.complete += 1;
            last_done = last_done.max(at);
        } else {
            last_done = ended;
        }
        latencies.extend(t.latencies_us);
    }
    fan.lost = u64::from(messages) * clients as u64 - fan.delivered;
    fan.secs = last_done.duration_since(start).as_secs_f64().max(1e-6);
    fan.per_sec = fan.delivered as f64 / fan.secs;
    fan.latency_us = Percentiles::of(latencies);
    Ok(fan)
}
