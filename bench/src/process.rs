//! A server under test, run as a child process.

use anyhow::{Context, bail};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This project's server.
    Ours,
    /// The original library's example (`axum-socket-io` 0.1.0).
    Original,
    /// Plain axum + `tokio::sync::broadcast`, a flush per frame and Nagle
    /// on: the naive baseline.
    Broadcast,
    /// Plain axum + `tokio::sync::broadcast` as a careful engineer writes
    /// it: `TCP_NODELAY`, a writer that drains its queue and flushes once.
    /// The fair baseline.
    Batched,
}

impl Kind {
    /// Short name used in results.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Original => "original",
            Kind::Broadcast => "broadcast",
            Kind::Batched => "batched",
        }
    }

    /// Longer label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ours => "this server",
            Kind::Original => "original library (axum-socket-io 0.1.0)",
            Kind::Broadcast => "plain axum + tokio broadcast, a flush per frame (naive)",
            Kind::Batched => "plain axum + tokio broadcast, batched writes, TCP_NODELAY (fair)",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Kind::Ours => "server",
            Kind::Original => "baseline-original",
            Kind::Broadcast => "baseline-broadcast",
            Kind::Batched => "baseline-batched",
        }
    }
}

/// Where the server binaries are: next to this executable (all of them are
/// in the same `target/<profile>` directory), unless `dir` says otherwise.
pub fn binary_path(dir: Option<&Path>, kind: Kind) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => std::env::current_exe()?
            .parent()
            .context("executable has no directory")?
            .to_owned(),
    };
    let path = dir.join(kind.binary());
    if !path.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p server -p bench)",
            path.display()
        );
    }
    Ok(path)
}

/// A running server.
pub struct ServerProc {
    /// Which one.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    binary: PathBuf,
    args: Vec<String>,
}

/// Kernel clock ticks per second for `/proc/<pid>/stat` (`getconf
/// CLK_TCK`; 100 on every Linux this runs on, used if that fails).
fn ticks_per_sec() -> f64 {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    });
    *TICKS
}

/// CPU seconds (user + system) process `pid` has used so far.
fn proc_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    (ticks(14).unwrap_or(0.0) + ticks(15).unwrap_or(0.0)) / ticks_per_sec()
}

impl ServerProc {
    /// Starts `binary` on `addr` (port 0 for any) and waits for its
    /// `listening on http://ADDR` line.
    pub async fn start(
        kind: Kind,
        binary: &Path,
        addr: &str,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut args = vec!["--addr".to_owned(), addr.to_owned()];
        args.extend(extra.iter().cloned());
        let mut child = Command::new(binary)
            .args(&args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(a) = line.strip_prefix("listening on http://") {
                    return Ok::<_, anyhow::Error>(a.trim().parse::<SocketAddr>()?);
                }
            }
            bail!("{} exited before listening", binary.display())
        })
        .await
        .context("server did not start in time")??;
        // Keep reading so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            kind,
            addr,
            child,
            binary: binary.to_owned(),
            args,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// CPU seconds (user + system) the process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.pid())
    }

    /// Resident memory in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid())) else {
            return 0;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }

    /// `GET path` over HTTP/1.1; the body, if the server answered 200.
    pub async fn http_get(&self, path: &str) -> Option<String> {
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        tcp.write_all(req.as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut raw))
            .await
            .ok()?
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    }

    /// Kills it and starts it again on the same address, as the same
    /// command (so a data directory is kept).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let addr = self.addr.to_string();
        let extra: Vec<String> = self.args.iter().skip(2).cloned().collect();
        // The port was just freed; binding can race the kernel briefly.
        let mut tries = 0;
        loop {
            match Self::start(self.kind, &self.binary, &addr, &extra).await {
                Ok(new) => {
                    *self = new;
                    return Ok(());
                }
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Kills the process and waits for it.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A `redis-server` for cluster runs: a free port of 127.0.0.1, no
/// persistence (a benchmark measures the cluster, not the disk). Killed on drop.
pub struct RedisProc {
    /// Its port.
    pub port: u16,
    child: Child,
}

impl RedisProc {
    /// Starts one and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server (scripts/setup.sh installs it)")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let mut buf = [0u8; 16];
                if tcp.write_all(b"PING\r\n").await.is_ok()
                    && tcp
                        .read(&mut buf)
                        .await
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return Ok(Self { port, child });
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("redis-server did not answer on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its URL for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// CPU seconds it has used.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.child.id().unwrap_or(0))
    }

    /// Stops it.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
