//! Durable (SQLite) vs in-memory `say`: throughput and acknowledgement
//! latency with many concurrent senders, both measured in the same run.
//!
//! `cargo run --release -p server --example say_bench -- [--senders N] [--secs S] [--window W]`
//!
//! Two shapes, each with both backends: every sender in its own room (the
//! figures are about storing), and every sender in one room (a busy chat:
//! each message also fans out to all senders). Each shape runs with every
//! sender keeping up to `W` (default 8) `say`s unacknowledged, as the app's
//! send queue does, and with exactly one. Prints a human line per run, the
//! ratios, and one JSON line. For profiling: `SAY_BENCH_SHAPE=N` runs only
//! the N-th (0-3) shape, `SAY_BENCH_DURABLE_ONLY=1` skips in-memory.

// A benchmark's job is to print its figures.
#![allow(clippy::print_stdout)]

use futures_util::{SinkExt, StreamExt};
use server::{AppState, Config, history::HistoryStore};
use shared::{Frame, Name, SUBPROTOCOL};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Figures {
    acks: u64,
    secs: f64,
    latencies_us: Vec<u64>,
    /// Posts that waited for a slow member (the room's flow control).
    waits: u64,
}

impl Figures {
    fn per_sec(&self) -> f64 {
        self.acks as f64 / self.secs
    }
    fn pct(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i]
    }
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

async fn sender(url: String, room: String, window: usize, until: Instant) -> (u64, Vec<u64>) {
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .expect("connect");
    let mut next_id = 0u32;
    // Requests on their way: id -> when sent.
    let mut pending: HashMap<u32, Instant> = HashMap::new();
    let mut send = async |ws: &mut Ws,
                          pending: &mut HashMap<u32, Instant>,
                          event: &'static str,
                          body: serde_json::Value| {
        next_id += 1;
        let frame = Frame::request(
            next_id,
            Name::from_static(event),
            serde_json::to_vec(&body).expect("json"),
        );
        pending.insert(next_id, Instant::now());
        ws.send(Message::Binary(frame.encode()))
            .await
            .expect("send");
    };
    // Waits for the answer to any pending request; returns its latency.
    let answer = async |ws: &mut Ws, pending: &mut HashMap<u32, Instant>| -> Duration {
        loop {
            let Some(Ok(Message::Binary(b))) = ws.next().await else {
                panic!("connection lost");
            };
            if let Ok(Frame::Response { id, payload }) = Frame::decode(&b)
                && let Some(sent) = pending.remove(&id)
            {
                assert!(
                    payload.starts_with(b"{\"ok\""),
                    "{}",
                    String::from_utf8_lossy(&payload)
                );
                return sent.elapsed();
            }
        }
    };
    send(&mut ws, &mut pending, "hello", serde_json::json!({"v": 1})).await;
    answer(&mut ws, &mut pending).await;
    send(
        &mut ws,
        &mut pending,
        "join",
        serde_json::json!({"room": room}),
    )
    .await;
    answer(&mut ws, &mut pending).await;
    let mut sent = 0u64;
    let mut acks = 0;
    let mut latencies = Vec::new();
    loop {
        while pending.len() < window && Instant::now() < until {
            let body = serde_json::json!({"room": room, "text": "a benchmark message of some length", "cid": format!("{sent}")});
            send(&mut ws, &mut pending, "say", body).await;
            sent += 1;
        }
        if pending.is_empty() {
            break;
        }
        let took = answer(&mut ws, &mut pending).await;
        latencies.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        acks += 1;
    }
    (acks, latencies)
}

async fn measure(
    store: Arc<dyn HistoryStore>,
    senders: usize,
    window: usize,
    secs: f64,
    shared_room: bool,
) -> Figures {
    // Every sender is 127.0.0.1: no per-address budgets.
    let config = Config {
        rate_limit: 0,
        max_connections_per_ip: 0,
        rooms_per_ip_per_minute: 0,
        sessions_per_ip_per_minute: 0,
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/socket", listener.local_addr().expect("addr"));
    let state = AppState::with_store(config, store);
    let metrics = state.metrics.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, state, async move {
        let _ = stopped.await;
    }));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..senders)
        .map(|i| {
            let room = if shared_room {
                "bench".to_owned()
            } else {
                format!("bench-{i}")
            };
            tokio::spawn(sender(url.clone(), room, window, until))
        })
        .collect();
    let mut figures = Figures {
        acks: 0,
        secs: 0.0,
        latencies_us: Vec::new(),
        waits: 0,
    };
    for t in tasks {
        let (acks, lat) = t.await.expect("sender");
        figures.acks += acks;
        figures.latencies_us.extend(lat);
    }
    figures.secs = start.elapsed().as_secs_f64();
    figures.latencies_us.sort_unstable();
    figures.waits = metrics.intake_waits.get();
    let _ = stop.send(());
    let _ = server.await;
    figures
}

#[tokio::main]
async fn main() {
    let senders = arg("--senders", 100.0) as usize;
    let secs = arg("--secs", 5.0);
    let window = arg("--window", 8.0) as usize;
    let mut json = serde_json::Map::new();
    let shapes = [
        ("own rooms", false, window),
        ("own rooms", false, 1),
        ("one room", true, window),
        ("one room", true, 1),
    ];
    let only = std::env::var("SAY_BENCH_SHAPE").ok();
    for (n, (shape, shared_room, window)) in shapes.into_iter().enumerate() {
        if only.as_deref().is_some_and(|o| o != format!("{n}")) {
            continue;
        }
        let dir = std::env::temp_dir().join(format!("chat-say-bench-{}-{n}", std::process::id()));
        let sqlite = server::sqlite::SqliteStore::open(
            &dir,
            server::sqlite::Retention {
                max_messages: 1_000_000,
                max_age: None,
            },
        )
        .expect("sqlite store");
        let memory = if std::env::var("SAY_BENCH_DURABLE_ONLY").is_ok() {
            Figures {
                acks: 1,
                secs: 1.0,
                latencies_us: Vec::new(),
                waits: 0,
            }
        } else {
            measure(
                Arc::new(server::memory::MemoryStore::new(1_000)),
                senders,
                window,
                secs,
                shared_room,
            )
            .await
        };
        let durable = measure(Arc::new(sqlite), senders, window, secs, shared_room).await;
        let _ = std::fs::remove_dir_all(&dir);
        let label = format!("{shape}, {window} in flight");
        for (name, f) in [("in-memory", &memory), ("durable", &durable)] {
            println!(
                "{label:>22} {name:>9}: {:>8.0} says/s  ack p50 {:>6} us  p99 {:>6} us  ({} acks, {senders} senders, {:.1} s, {} waited for a slow member)",
                f.per_sec(),
                f.pct(0.50),
                f.pct(0.99),
                f.acks,
                f.secs,
                f.waits
            );
        }
        let ratio = durable.per_sec() / memory.per_sec().max(1e-9);
        println!("{label:>22} durable / in-memory throughput: {ratio:.2}");
        json.insert(
            format!("{}_window_{window}", shape.replace(' ', "_")),
            serde_json::json!({
                "memory": {"per_sec": memory.per_sec(), "p50_us": memory.pct(0.5), "p99_us": memory.pct(0.99)},
                "durable": {"per_sec": durable.per_sec(), "p50_us": durable.pct(0.5), "p99_us": durable.pct(0.99)},
                "ratio": ratio,
            }),
        );
    }
    json.insert("bench".into(), "say".into());
    json.insert("senders".into(), senders.into());
    json.insert("secs".into(), secs.into());
    println!("{}", serde_json::Value::Object(json));
}
