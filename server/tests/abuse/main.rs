//! The abuse suite: every attack of "Safe on the open internet", made by a
//! client over real sockets against the real binary (the release build
//! when `CHAT_SERVER_BIN` names it, as `scripts/test.sh` does), under a
//! 2 GiB address-space limit (`ulimit -v`), with the server's default
//! limits unless a test says otherwise. Each test asserts its bound and
//! prints what it measured (`[abuse] …` lines; run with `--nocapture`).
//!
//! Ignored by a plain `cargo test`: the figures mean something only one
//! test at a time against an optimised server, so `scripts/test.sh` runs
//! them after the release build with `--ignored --test-threads 1`.
#![allow(dead_code, unreachable_pub)]

#[path = "../common/mod.rs"]
mod common;

mod endpoints;
mod flood;
mod memory;
mod names;
mod rooms;
mod timing;
mod wal;

use common::Client;
use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The address-space limit every server here runs under.
pub const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;

/// The server binary under test (`CHAT_SERVER_BIN`, relative to the
/// workspace root, or this build's own).
pub fn binary() -> PathBuf {
    match std::env::var_os("CHAT_SERVER_BIN").map(PathBuf::from) {
        Some(path) if path.is_relative() => {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(path)
        }
        Some(path) => path,
        None => PathBuf::from(env!("CARGO_BIN_EXE_server")),
    }
}

/// Prints one figure line (the figures are this suite's output).
#[allow(clippy::print_stdout)]
pub fn report(test: &str, what: impl std::fmt::Display) {
    println!("[abuse] {test}: {what}");
}

/// The real server, under `ulimit -v 2 GiB`; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub url: String,
    /// `--metrics-addr`, when given: `/metrics` is read there.
    metrics: Option<String>,
}

impl Server {
    /// Starts the binary on port 0 with `args` (the defaults otherwise).
    pub fn start(args: &[&str]) -> Self {
        Self::launch(args.iter().map(|s| (*s).to_owned()).collect())
    }

    fn launch(mut args: Vec<String>) -> Self {
        use std::io::BufRead;
        // Never the default data directory (relative to where tests run).
        if !args.iter().any(|a| a == "--data-dir" || a == "--in-memory") {
            args.push("--in-memory".into());
        }
        let script = format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\"");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(binary())
            .args(["--addr", "127.0.0.1:0"])
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("CHAT_TEST_SERVER_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("server starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .expect("address");
        let metrics = args
            .iter()
            .position(|a| a == "--metrics-addr")
            .and_then(|i| args.get(i + 1).cloned());
        Self {
            child,
            url: format!("ws://{addr}/socket"),
            addr,
            metrics,
        }
    }

    /// Stops it (SIGTERM, waiting) and starts it again with `args`.
    pub fn restart_with(mut self, args: &[&str]) -> Self {
        self.terminate();
        Self::launch(args.iter().map(|s| (*s).to_owned()).collect())
    }

    /// SIGTERM, then waits for the exit; returns how long it took.
    pub fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        self.signal("-TERM");
        let _ = self.child.wait();
        started.elapsed()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "signal delivered");
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How it exited, once it has.
    pub fn exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory, in MB.
    pub fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url).await
    }

    /// A raw HTTP exchange: sends `request`, returns everything read.
    pub fn http(&self, request: &str) -> String {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(self.addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        tcp.write_all(request.as_bytes()).expect("request");
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    }

    /// `GET path`: head and body.
    pub fn get(&self, path: &str) -> (String, String) {
        let raw = self.http(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        ));
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        (head.to_owned(), body.to_owned())
    }

    /// `/healthz`, parsed.
    pub fn health(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/healthz").1).expect("healthz json")
    }

    /// One `/metrics` sample.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = match &self.metrics {
            Some(addr) => {
                use std::io::{Read, Write};
                let mut tcp = std::net::TcpStream::connect(addr).expect("metrics port");
                write!(
                    tcp,
                    "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                )
                .expect("request");
                let mut raw = String::new();
                let _ = tcp.read_to_string(&mut raw);
                raw.split_once("\r\n\r\n")
                    .map(|(_, b)| b.to_owned())
                    .unwrap_or_default()
            }
            None => self.get("/metrics").1,
        };
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{sample} not in:\n{text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A well-behaved client that pings the server every 100 ms (within the
/// default rate limit) during an attack and records each round trip. It
/// runs on a thread and runtime of its own, so the attackers' work in
/// this process does not delay it.
pub struct Bystander {
    rtts: Arc<Mutex<Vec<Duration>>>,
    lost: Arc<Mutex<bool>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Bystander {
    pub async fn start(server: &Server) -> Self {
        let url = server.url.clone();
        let rtts = Arc::new(Mutex::new(Vec::new()));
        let lost = Arc::new(Mutex::new(false));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, l, s) = (rtts.clone(), lost.clone(), stop.clone());
        let (ready, connected) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut c = Client::connect(&url).await;
                let _ = ready.send(());
                while !s.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent = Instant::now();
                    c.notify("ping", &b"rtt"[..]).await;
                    match tokio::time::timeout(Duration::from_secs(5), c.event("pong")).await {
                        Ok(_) => r.lock().expect("rtts").push(sent.elapsed()),
                        Err(_) => {
                            *l.lock().expect("lost") = true;
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        });
        connected.await.expect("the bystander connects");
        Self {
            rtts,
            lost,
            stop,
            thread,
        }
    }

    /// Stops; returns (round trips, the slowest one).
    pub fn stop(self) -> (usize, Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
        assert!(
            !*self.lost.lock().expect("lost"),
            "the bystander's ping went unanswered"
        );
        let rtts = self.rtts.lock().expect("rtts");
        (
            rtts.len(),
            rtts.iter().copied().max().unwrap_or(Duration::ZERO),
        )
    }
}

/// Asserts a bystander stayed responsive (< 100 ms) and reports it.
pub fn bystander_ok(test: &str, bystander: Bystander) {
    let (n, worst) = bystander.stop();
    report(
        test,
        format!("bystander ping round trip: worst {worst:?} over {n} pings"),
    );
    assert!(n > 5, "the bystander got only {n} pongs");
    assert!(
        worst < Duration::from_millis(100),
        "a bystander's ping took {worst:?} during the attack"
    );
}

/// A free port on 127.0.0.1, as `127.0.0.1:PORT`.
pub fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    format!("127.0.0.1:{port}")
}

/// Polls `/metrics` until `sample` reaches `want` (or `within` passes).
pub async fn metric_reaches(server: &Server, sample: &str, want: f64, within: Duration) -> f64 {
    let deadline = Instant::now() + within;
    loop {
        let got = server.metric(sample);
        if got >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `/healthz` until it counts at most `n` sockets; how long it took.
pub async fn sockets_fall_to(server: &Server, n: u64, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if server.health()["connections"].as_u64() <= Some(n) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A fresh directory for a server's data.
pub fn data_dir(tag: &str) -> PathBuf {
    common::temp_dir(tag)
}

/// Sends `n` `say`s to `room` with up to `window` in flight and returns
/// every acknowledgement (an error stops the fill).
pub async fn fill(c: &mut Client, room: &str, n: usize, text: &str, window: usize) {
    let mut inflight = std::collections::VecDeque::new();
    for i in 0..n {
        let body = serde_json::json!({"room": room, "text": text, "cid": format!("f{i}")});
        let id = c
            .request("say", serde_json::to_vec(&body).expect("json"))
            .await;
        inflight.push_back(id);
        if inflight.len() >= window
            && let Some(id) = inflight.pop_front()
        {
            let answer = c.response(id).await;
            shared::chat::parse_envelope::<shared::chat::Said>(&answer)
                .expect("envelope")
                .expect("stored");
        }
    }
    for id in inflight {
        let answer = c.response(id).await;
        shared::chat::parse_envelope::<shared::chat::Said>(&answer)
            .expect("envelope")
            .expect("stored");
    }
}

/// What the server compares nicknames by.
pub fn names_key(nick: &str) -> String {
    server::names::nick_key(nick)
}

/// Says `hello` and returns the welcome.
pub async fn hello(c: &mut Client, nick: &str) -> shared::chat::Welcome {
    c.rich("hello", &serde_json::json!({"v": 1, "nick": nick}))
        .await
        .expect("hello")
}
