//! Sign-ins: what one costs, and whether a flood of wrong ones slows the
//! chat for everyone else.
//!
//! - **One sign-in**: sequential `POST /api/signin` with the right
//!   password, each a fresh connection; the median and p99 round trip.
//! - **Chat under a flood**: the latency scenario (one sender, a room of
//!   `clients`), run without and with wrong sign-ins arriving at `rate`
//!   per second, interleaved, against the same server in the same run.
//!   Each wrong try names a different unknown user from a different
//!   address (`X-Forwarded-For`, the server trusting 127.0.0.1 as its
//!   proxy), so no throttle key ever repeats: every try costs the server
//!   a full argon2id verification, the worst a botnet can make it do.

use super::{Load, Percentiles, fanout, stats::percentile};
use crate::{client::Profile, process::ServerProc};
use serde::Serialize;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The password of the account the bench signs in to.
const PASSWORD: &str = "bench-Pass-93xq";

/// One HTTP/1.1 `POST` on a fresh connection; the status (0: no answer).
async fn post(addr: SocketAddr, path: &str, body: &str, forwarded: &str) -> u16 {
    let attempt = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nX-Forwarded-For: {forwarded}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(req.as_bytes()).await.ok()?;
        let mut head = vec![0u8; 64];
        let n = tcp.read(&mut head).await.ok()?;
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        line.split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(30), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

fn creds(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password }).to_string()
}

/// Wrong sign-ins sent during one run, by how they were answered.
#[derive(Debug, Default, Serialize)]
pub struct FloodCount {
    /// Tries sent.
    pub sent: u64,
    /// 401: verified and refused (the full cost).
    pub refused: u64,
    /// 429: throttled before hashing.
    pub throttled: u64,
    /// 503: the hashing queue was full (refused at once).
    pub busy: u64,
    /// Anything else, or no answer.
    pub other: u64,
}

/// One pair of runs: the chat alone, then under the flood.
#[derive(Debug, Serialize)]
pub struct Pair {
    /// Chat latency without the flood, microseconds.
    pub quiet_us: Option<Percentiles>,
    /// Chat latency with the flood, microseconds.
    pub flooded_us: Option<Percentiles>,
    /// The flood during the second run.
    pub flood: FloodCount,
}

/// What the scenario measured.
#[derive(Debug, Serialize)]
pub struct Signin {
    /// Round trip of one right sign-in, milliseconds: median.
    pub one_ms_p50: f64,
    /// …and 99th percentile (of `samples`).
    pub one_ms_p99: f64,
    /// Sign-ins timed.
    pub samples: usize,
    /// Wrong sign-ins per second during the flooded runs.
    pub rate: u32,
    /// The runs, in order.
    pub pairs: Vec<Pair>,
    /// Median over the pairs of flooded p99 / quiet p99.
    pub p99_ratio: f64,
}

/// Sends wrong sign-ins at `rate` per second until `stop`, each in its
/// own task (a slow answer does not slow the rate).
async fn flood(addr: SocketAddr, rate: u32, stop: Arc<AtomicU64>, counts: Arc<[AtomicU64; 5]>) {
    let every = Duration::from_secs(1) / rate.max(1);
    let mut tick = tokio::time::interval(every);
    let mut n: u64 = 0;
    let mut tasks = tokio::task::JoinSet::new();
    while stop.load(Ordering::Relaxed) == 0 {
        tick.tick().await;
        n += 1;
        counts[0].fetch_add(1, Ordering::Relaxed);
        let counts = counts.clone();
        // A different unknown name from a different address every time.
        let forwarded = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        tasks.spawn(async move {
            let status = post(
                addr,
                "/api/signin",
                &creds(&format!("nobody-{n}"), "wrong-guess-1"),
                &forwarded,
            )
            .await;
            let slot = match status {
                401 => 1,
                429 => 2,
                503 => 3,
                _ => 4,
            };
            counts[slot].fetch_add(1, Ordering::Relaxed);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Signs up the bench's account on `server` and times `samples`
/// sign-ins with the right password: (median, p99) in milliseconds.
pub async fn one_signin(server: &ServerProc, samples: usize) -> anyhow::Result<(f64, f64)> {
    let addr = server.addr;
    let made = post(
        addr,
        "/api/signup",
        &creds("bench-user", PASSWORD),
        "192.0.2.1",
    )
    .await;
    anyhow::ensure!(made == 201, "sign-up answered {made}");
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        let status = post(
            addr,
            "/api/signin",
            &creds("bench-user", PASSWORD),
            &format!("192.0.2.{}", 2 + i % 200),
        )
        .await;
        anyhow::ensure!(status == 200, "sign-in answered {status}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}

/// The latency load on `server`, under `rate` wrong sign-ins per second
/// if given: its latency percentiles and the flood's answers.
pub async fn chat_latency(
    server: &ServerProc,
    load: Load,
    rate: Option<u32>,
) -> anyhow::Result<(Option<Percentiles>, FloodCount)> {
    let Some(rate) = rate else {
        let quiet = fanout(server, Profile::Rich, load).await?;
        return Ok((quiet.latency_us, FloodCount::default()));
    };
    let stop = Arc::new(AtomicU64::new(0));
    let counts: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
    let flooding = tokio::spawn(flood(server.addr, rate, stop.clone(), counts.clone()));
    // The flood reaches its pace before the chat starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flooded = fanout(server, Profile::Rich, load).await;
    stop.store(1, Ordering::Relaxed);
    let _ = flooding.await;
    let get = |i: usize| counts[i].load(Ordering::Relaxed);
    Ok((
        flooded?.latency_us,
        FloodCount {
            sent: get(0),
            refused: get(1),
            throttled: get(2),
            busy: get(3),
            other: get(4),
        },
    ))
}

/// Puts the runs together: the median over the pairs of flooded p99 ÷
/// quiet p99.
pub fn summary(one: (f64, f64), samples: usize, rate: u32, pairs: Vec<Pair>) -> Signin {
    let mut ratios: Vec<f64> = pairs
        .iter()
        .filter_map(|p| {
            let (q, f) = (p.quiet_us.as_ref()?, p.flooded_us.as_ref()?);
            Some(f.p99 as f64 / (q.p99 as f64).max(1.0))
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    Signin {
        one_ms_p50: one.0,
        one_ms_p99: one.1,
        samples,
        rate,
        pairs,
        p99_ratio: percentile(&ratios, 0.5),
    }
}
