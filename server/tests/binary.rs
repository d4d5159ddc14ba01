//! The real server binary: resources come back after many connections, and
//! SIGTERM closes sockets with 1001 and exits 0.

mod common;

use bytes::Bytes;
use common::{Binary, Client, End, temp_dir};
use std::time::{Duration, Instant};

struct Server {
    bin: Binary,
    url: String,
}

impl Server {
    fn start() -> Self {
        let data = temp_dir("binary");
        let bin = Binary::start(&["--data-dir".as_ref(), data.as_os_str()]);
        let url = bin.url.clone();
        Self { bin, url }
    }

    fn pid(&self) -> u32 {
        self.bin.child.id()
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("proc fd")
            .count()
    }

    /// User + system CPU time, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the command name, which ends with ')'.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line.
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }
}

async fn cycle(url: &str) {
    let mut c = Client::connect(url).await;
    c.call("myip", Bytes::new()).await;
    c.close().await;
}

#[tokio::test]
async fn after_200_connect_cycles_cpu_stays_idle_and_fds_return() {
    let server = Server::start();
    cycle(&server.url).await; // warm-up: lobby, worker threads
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds_before = server.open_fds();

    for _ in 0..200 {
        cycle(&server.url).await;
    }
    // Descriptors come back once the server has seen every close.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fds = server.open_fds();
    while fds > fds_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds = server.open_fds();
    }
    assert!(fds <= fds_before, "fds: {fds_before} before, {fds} after");

    // Idle for two seconds: the server uses (almost) no CPU. A writer that
    // spins after a disconnect would burn ~200 ticks here.
    let before = server.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.cpu_ticks() - before;
    // CPU time, not wall-clock: a busy machine delays the server but does
    // not add to it. Idle here measures 0–2 ticks (the periodic tasks); a
    // spinning task would show ~200 (one core, 100 ticks a second).
    eprintln!("[binary] {idle} ticks of CPU in 2 s idle");
    assert!(
        idle <= 10,
        "server used {idle} ticks of CPU in 2 s while idle"
    );
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_0() {
    let mut server = Server::start();
    let mut c = Client::connect(&server.url).await;
    c.call("myip", Bytes::new()).await;
    server.bin.signal("-TERM");
    match c.ended().await {
        End::Closed(code) => assert_eq!(code, 1001),
        other => panic!("expected 1001, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.bin.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
}
