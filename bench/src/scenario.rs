//! The scenarios. Each takes a running server and returns its figures.

use crate::{
    client::{self, Incoming, Joined, Profile},
    process::ServerProc,
};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt, stream::SplitStream};
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

/// Marks warm-up messages (sent until every receiver has seen one, so
/// nobody misses the start because its join was still on its way).
const WARMUP: u32 = u32::MAX;
/// Request ids from here on are warm-ups (their acks free no window slot).
const WARMUP_IDS: u32 = 2_000_000_000;
/// `say`s a rich sender keeps unacknowledged at most.
const RICH_WINDOW: usize = 256;
/// A run with no delivery for this long is over.
const IDLE: Duration = Duration::from_secs(5);
/// Rich storm: messages said before the restart, which the others recover.
const MISSED: u32 = 5;
/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;

/// Opens `n` clients.
pub async fn open_many(
    server: &ServerProc,
    profile: Profile,
    n: usize,
    join: bool,
) -> anyhow::Result<Vec<Joined>> {
    open_many_with(server, profile, n, join, false).await
}

/// [`open_many`], with small receive buffers if asked.
async fn open_many_with(
    server: &ServerProc,
    profile: Profile,
    n: usize,
    join: bool,
    small_buffer: bool,
) -> anyhow::Result<Vec<Joined>> {
    let addr = server.addr;
    let opened: Vec<anyhow::Result<Joined>> = futures_util::stream::iter(0..n)
        .map(|_| async move {
            client::open_with(addr, profile, join, None, small_buffer)
                .await
                .map(|(j, _)| j)
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// What one receiver saw.
#[derive(Debug, Default)]
struct Tally {
    unique: u64,
    duplicates: u64,
    reordered: u64,
    done_at: Option<Instant>,
    latencies_us: Vec<u64>,
}

struct Shared {
    warmed: AtomicUsize,
    warm: Notify,
    delivered: AtomicU64,
    window: Option<Arc<Semaphore>>,
    refused: AtomicU64,
}

/// Reads one client's stream until it has all `m` messages or `stop`.
async fn receive(
    mut stream: SplitStream<client::Ws>,
    profile: Profile,
    m: u32,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    keep_latency: bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut seen = vec![false; m as usize];
    let mut highest: Option<u32> = None;
    let mut warmed = false;
    let mut unreported = 0u64;
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = stop.changed() => break,
        };
        let Some(Ok(Message::Binary(data))) = msg else {
            if matches!(msg, Some(Ok(_))) {
                continue;
            }
            break;
        };
        match client::classify(profile, &data) {
            Incoming::Message { seq: WARMUP, .. } => {
                if !warmed {
                    warmed = true;
                    shared.warmed.fetch_add(1, Ordering::Relaxed);
                    shared.warm.notify_waiters();
                }
            }
            Incoming::Message { seq, sent_us } => {
                let Some(slot) = seen.get_mut(seq as usize) else {
                    continue;
                };
                if *slot {
                    tally.duplicates += 1;
                    continue;
                }
                *slot = true;
                tally.unique += 1;
                if highest.is_some_and(|h| seq < h) {
                    tally.reordered += 1;
                }
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
                if keep_latency {
                    tally
                        .latencies_us
                        .push(client::now_us().saturating_sub(sent_us));
                }
                unreported += 1;
                if unreported == 64 {
                    shared.delivered.fetch_add(unreported, Ordering::Relaxed);
                    unreported = 0;
                }
                if tally.unique == u64::from(m) {
                    tally.done_at = Some(Instant::now());
                    break;
                }
            }
            Incoming::Answer { id, ok } => {
                if !ok {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                }
                if id < WARMUP_IDS
                    && let Some(w) = &shared.window
                {
                    w.add_permits(1);
                }
            }
            Incoming::Other => {}
        }
    }
    shared.delivered.fetch_add(unreported, Ordering::Relaxed);
    // A sender keeps reading acknowledgements after its own copy is in.
    if shared.window.is_some() && tally.done_at.is_some() {
        let window = shared.window.clone();
        tokio::spawn(async move {
            while let Some(Ok(Message::Binary(data))) = stream.next().await {
                if let Incoming::Answer { id, .. } = client::classify(profile, &data)
                    && id < WARMUP_IDS
                    && let Some(w) = &window
                {
                    w.add_permits(1);
                }
            }
        });
    }
    tally
}

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

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    fn of(mut v: Vec<u64>) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        Some(Self {
            n: v.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: v[v.len() - 1],
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let p = Percentiles::of((1..=100).rev().collect()).expect("samples");
        assert_eq!((p.n, p.p50, p.p90, p.p99, p.max), (100, 51, 90, 99, 100));
        assert!(Percentiles::of(Vec::new()).is_none());
    }
}
