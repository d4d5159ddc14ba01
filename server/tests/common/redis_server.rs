//! Real Redis for tests: one `redis-server`, a three-master Redis Cluster,
//! and a proxy that cuts one process off. Self-contained (no harness
//! imports): the server crate's own tests include this file too.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

/// How long Redis gets to answer after it starts.
const WAIT: Duration = Duration::from_secs(10);

/// A fresh directory under the system's temporary one.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chat-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A real `redis-server` on a free port of 127.0.0.1, with its data in a
/// fresh directory (append-only file, fsync on every write, so a restart
/// keeps everything it acknowledged). Killed on drop.
pub struct Redis {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: Option<std::process::Child>,
    /// Serves TLS only, and asks clients for a certificate ([`Redis::start_tls`]).
    tls: bool,
    /// Settings after the defaults (which they override).
    extra: Vec<String>,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Started with more settings, e.g. `["--appendfsync", "everysec"]`.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut redis = Self::unstarted();
        redis.extra = extra.iter().map(|s| (*s).to_owned()).collect();
        redis.spawn_anywhere();
        redis
    }

    /// A free port and a directory, with nothing listening yet
    /// ([`Redis::restart`] starts it).
    pub fn unstarted() -> Self {
        let port = free_port();
        Self {
            port,
            dir: temp_dir("redis"),
            child: None,
            tls: false,
            extra: Vec::new(),
        }
    }

    /// Redis over TLS only (`rediss://`), with certificates made by
    /// `openssl` in its directory: `ca.crt` signed `server.crt` (for
    /// 127.0.0.1) and `client.crt`, which clients must present.
    pub fn start_tls() -> Self {
        let mut redis = Self::unstarted();
        redis.tls = true;
        let openssl = |args: Vec<&str>| {
            let out = std::process::Command::new("openssl")
                .args(&args)
                .current_dir(&redis.dir)
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run openssl ({e}): scripts/setup.sh installs it")
                });
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        const EC: [&str; 5] = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(EC);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=chat test CA",
        ]);
        openssl(ca);
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            let file = |ending: &str| format!("{name}.{ending}");
            std::fs::write(redis.dir.join(file("ext")), ext).expect("extensions file");
            let (key_file, csr, crt, extfile) =
                (file("key"), file("csr"), file("crt"), file("ext"));
            let subject = format!("/CN=chat test {name}");
            let mut req = vec!["req"];
            req.extend(EC);
            req.extend(["-keyout", &key_file, "-out", &csr, "-subj", &subject]);
            openssl(req);
            openssl(vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &crt,
                "-extfile",
                &extfile,
            ]);
        }
        redis.spawn_anywhere();
        redis
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// A file [`Redis::start_tls`] made (`ca.crt`, `client.key`…).
    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(name)
    }

    /// Starts it on its port (a restart keeps the port its clients know).
    fn spawn(&mut self) {
        assert!(
            self.try_spawn(),
            "redis-server could not start on port {}",
            self.port
        );
    }

    /// Starts it on its port or, if that was taken meanwhile (another
    /// test's server got it between `free_port` and now), on another: the
    /// first start only.
    fn spawn_anywhere(&mut self) {
        for _ in 0..5 {
            if self.try_spawn() {
                return;
            }
            self.port = free_port();
            if let Some(bus) = self.extra.iter().position(|a| a == "--cluster-port") {
                self.extra[bus + 1] = free_port().to_string();
            }
        }
        panic!("redis-server could not start on any of five free ports");
    }

    /// Starts it and waits for it to answer: `false` if it exited first
    /// (its port was taken).
    fn try_spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = std::process::Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        if self.tls {
            command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "yes",
                ])
                .arg("--tls-cert-file")
                .arg(self.file("server.crt"))
                .arg("--tls-key-file")
                .arg(self.file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(self.file("ca.crt"));
        } else {
            command.args(["--port", &port]);
        }
        let child = command
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): cluster tests need it on PATH \
                     (scripts/setup.sh installs Debian's redis-server)"
                )
            });
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().is_ok_and(|status| status.is_some()));
            if exited {
                self.child = None;
                return false;
            }
            if self.tls && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return true;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server answers PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis-cli` against it, its output as text.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills it (SIGKILL: no goodbye to anyone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters (no replicas) on free ports, each
/// fsyncing every write, made with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                let bus = free_port().to_string();
                Redis::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "3000",
                ])
            })
            .collect();
        let mut create = std::process::Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs (scripts/setup.sh installs it)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        let deadline = std::time::Instant::now() + WAIT;
        while !cluster.nodes.iter().all(|n| {
            n.cli(&["CLUSTER", "INFO"])
                .lines()
                .any(|l| l.trim() == "cluster_state:ok")
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "the cluster's state is ok on every node"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The seeds, as `--redis-cluster` takes them.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The hash slot of `key`.
    pub fn slot(&self, key: &str) -> u16 {
        self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("a slot")
    }

    /// The port of the master serving `slot` (from `CLUSTER NODES`).
    pub fn master_of(&self, slot: u16) -> u16 {
        for line in self.nodes[0].cli(&["CLUSTER", "NODES"]).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                from.parse::<u16>().is_ok_and(|f| f <= slot)
                    && to.parse::<u16>().is_ok_and(|t| slot <= t)
            });
            if serves {
                let port = fields[1]
                    .split(['@', ','])
                    .next()
                    .and_then(|a| a.rsplit_once(':'))
                    .and_then(|(_, p)| p.parse().ok());
                return port.expect("a node address");
            }
        }
        panic!("no master serves slot {slot}")
    }

    /// The port of the master holding `key` (asked of each node: only its
    /// owner lists it).
    pub fn owner(&self, key: &str) -> Option<u16> {
        self.nodes
            .iter()
            .find(|n| n.cli(&["KEYS", key]).lines().any(|l| l.trim() == key))
            .map(|n| n.port)
    }
}

/// A TCP proxy to Redis that the test can cut (every connection dropped,
/// new ones refused) and restore: one process partitioned from Redis while
/// the others still reach it.
pub struct Partition {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Partition {
    pub async fn to(redis_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (is_cut, all) = (cut.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_cut.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                all.lock().expect("links").push(link.abort_handle());
            }
        });
        Self {
            port,
            cut,
            links,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
