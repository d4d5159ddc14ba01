//! Test harness: an in-process server on port 0 and a protocol client built
//! on tokio-tungstenite and the `shared` codec.
#![allow(dead_code, unreachable_pub)]

pub mod api;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::{Serialize, de::DeserializeOwned};
use server::{AppState, Config};
use shared::{
    Frame, Name, SUBPROTOCOL,
    chat::{ErrorBody, parse_envelope},
};
use std::{collections::VecDeque, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Message,
        client::IntoClientRequest,
        http::HeaderValue,
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

pub const WAIT: Duration = Duration::from_secs(10);

/// A configuration for tests: port 0, and no rate limit or per-address
/// budget unless a test sets one (every test client is 127.0.0.1).
pub fn config() -> Config {
    Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        rate_limit: 0,
        max_connections_per_ip: 0,
        rooms_per_ip_per_minute: 0,
        sessions_per_ip_per_minute: 0,
        ..Config::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let store = Arc::new(server::memory::MemoryStore::new(config.history));
        Self::start_with_store(config, store).await
    }

    /// A server whose history lives in `store`.
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn server::history::HistoryStore>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = AppState::with_store(config, store);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/socket", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url()).await
    }

    /// `GET path` over plain HTTP/1.1: status and body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        tcp.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
            .await
            .expect("answer in time")
            .expect("read");
        let raw = String::from_utf8(raw).expect("utf-8");
        let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "expected a plain body: {head}"
        );
        (status, body.to_owned())
    }

    /// One sample of `/metrics` (a counter, gauge or histogram line).
    pub async fn metric(&self, sample: &str) -> f64 {
        let (status, text) = self.http_get("/metrics").await;
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{sample} not in:\n{text}"))
    }

    /// Waits until a metric reaches at least `want`.
    pub async fn metric_reaches(&self, sample: &str, want: f64) -> f64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.metric(sample).await;
            if got >= want || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server run");
        }
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a read ended.
#[derive(Debug)]
pub enum End {
    /// A close frame with this code.
    Closed(u16),
    /// Close frame without a code.
    ClosedNoCode,
    /// The connection ended without a close frame.
    Dropped,
}

pub struct Client {
    pub ws: Ws,
    next_id: u32,
    pending: VecDeque<Frame>,
}

pub fn request(url: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    req
}

pub fn name(s: &str) -> Name {
    Name::new(s).expect("name")
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        let (ws, response) = tokio_tungstenite::connect_async(request(url))
            .await
            .expect("websocket connects");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.as_bytes()),
            Some(SUBPROTOCOL.as_bytes()),
            "server echoes the subprotocol"
        );
        Self::from_ws(ws)
    }

    pub fn from_ws(ws: Ws) -> Self {
        Self {
            ws,
            next_id: 1,
            pending: VecDeque::new(),
        }
    }

    pub async fn send(&mut self, frame: Frame) {
        self.ws
            .send(Message::Binary(frame.encode()))
            .await
            .expect("send");
    }

    pub async fn notify(&mut self, event: &str, payload: impl Into<Bytes>) {
        self.send(Frame::notify(name(event), payload)).await;
    }

    /// Sends a Request and returns its id.
    pub async fn request(&mut self, event: &str, payload: impl Into<Bytes>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(Frame::request(id, name(event), payload)).await;
        id
    }

    /// Sends a Request without expecting the connection to be there
    /// (attack tests, whose clients get cut).
    pub async fn try_request(&mut self, event: &str, payload: impl Into<Bytes>) -> Result<u32, ()> {
        let id = self.next_id;
        self.next_id += 1;
        self.ws
            .send(Message::Binary(
                Frame::request(id, name(event), payload).encode(),
            ))
            .await
            .map(|()| id)
            .map_err(|_| ())
    }

    /// Reads the next protocol frame from the socket (not the buffer).
    async fn read_frame(&mut self) -> Result<Frame, End> {
        loop {
            let msg = match self.ws.next().await {
                Some(Ok(msg)) => msg,
                Some(Err(_)) | None => return Err(End::Dropped),
            };
            match msg {
                Message::Binary(b) => return Ok(Frame::decode(&b).expect("server frames decode")),
                Message::Close(Some(CloseFrame { code, .. })) => {
                    return Err(End::Closed(code.into()));
                }
                Message::Close(None) => return Err(End::ClosedNoCode),
                Message::Text(t) => panic!("server sent a text message: {t}"),
                _ => {}
            }
        }
    }

    /// The next frame matching `pick`, keeping the others for later.
    pub async fn next_matching(&mut self, mut pick: impl FnMut(&Frame) -> bool) -> Frame {
        if let Some(i) = self.pending.iter().position(&mut pick) {
            return self.pending.remove(i).expect("index");
        }
        tokio::time::timeout(WAIT, async {
            loop {
                match self.read_frame().await {
                    Ok(f) if pick(&f) => return f,
                    Ok(f) => self.pending.push_back(f),
                    Err(end) => panic!("connection ended while waiting: {end:?}"),
                }
            }
        })
        .await
        .expect("frame arrives in time")
    }

    pub async fn response(&mut self, id: u32) -> Bytes {
        match self
            .next_matching(|f| matches!(f, Frame::Response { id: i, .. } if *i == id))
            .await
        {
            Frame::Response { payload, .. } => payload,
            _ => unreachable!("picked a response"),
        }
    }

    /// The Response for `id`, or how the connection ended first.
    pub async fn response_or_end(&mut self, id: u32) -> Result<Bytes, End> {
        let is_it = |f: &Frame| matches!(f, Frame::Response { id: i, .. } if *i == id);
        if let Some(i) = self.pending.iter().position(is_it)
            && let Some(Frame::Response { payload, .. }) = self.pending.remove(i)
        {
            return Ok(payload);
        }
        tokio::time::timeout(WAIT, async {
            loop {
                match self.read_frame().await? {
                    Frame::Response { id: i, payload } if i == id => return Ok(payload),
                    f => self.pending.push_back(f),
                }
            }
        })
        .await
        .expect("an answer or the end in time")
    }

    /// A call that may find the connection gone: its answer, or `None`.
    pub async fn try_call(&mut self, event: &str, payload: impl Into<Bytes>) -> Option<Bytes> {
        let id = self.try_request(event, payload).await.ok()?;
        self.response_or_end(id).await.ok()
    }

    pub async fn call(&mut self, event: &str, payload: impl Into<Bytes>) -> Bytes {
        let id = self.request(event, payload).await;
        self.response(id).await
    }

    /// A rich call: JSON in, envelope out.
    pub async fn rich<T: DeserializeOwned>(
        &mut self,
        event: &str,
        body: &impl Serialize,
    ) -> Result<T, ErrorBody> {
        let payload = serde_json::to_vec(body).expect("json");
        let answer = self.call(event, payload).await;
        parse_envelope(&answer).unwrap_or_else(|e| {
            panic!(
                "response to {event} is not an envelope ({e}): {}",
                String::from_utf8_lossy(&answer)
            )
        })
    }

    /// The payload of the next Notify named `event`.
    pub async fn event(&mut self, event: &str) -> Bytes {
        match self
            .next_matching(|f| matches!(f, Frame::Notify { name, .. } if name == event))
            .await
        {
            Frame::Notify { payload, .. } => payload,
            _ => unreachable!("picked a notify"),
        }
    }

    pub async fn event_json<T: DeserializeOwned>(&mut self, event: &str) -> T {
        let payload = self.event(event).await;
        serde_json::from_slice(&payload).expect("event json")
    }

    /// Whether a Notify named `event` arrives within `within`. Panics if
    /// the connection ends meanwhile: a dead socket sees nothing, which
    /// must never pass for "nothing was sent" (absence checks use
    /// [`Client::assert_no_event_within`]).
    pub async fn sees_event_within(&mut self, event: &str, within: Duration) -> bool {
        if self
            .pending
            .iter()
            .any(|f| matches!(f, Frame::Notify { name, .. } if name == event))
        {
            return true;
        }
        let found = tokio::time::timeout(within, async {
            loop {
                match self.read_frame().await {
                    Ok(f) => {
                        let hit = matches!(&f, Frame::Notify { name, .. } if name == event);
                        self.pending.push_back(f);
                        if hit {
                            return true;
                        }
                    }
                    Err(end) => {
                        panic!("the connection ended while watching for {event}: {end:?}")
                    }
                }
            }
        })
        .await;
        found.unwrap_or(false)
    }

    /// Asserts that no Notify named `event` arrives within `window`, and
    /// that the connection is alive after it: a `ping` sent after the
    /// window is answered, and nothing the server sent before that `pong`
    /// is `event` either. Fails if the connection ends.
    pub async fn assert_no_event_within(&mut self, event: &str, window: Duration, why: &str) {
        let is_event = |f: &Frame| matches!(f, Frame::Notify { name, .. } if name == event);
        assert!(!self.pending.iter().any(is_event), "{why}: {event} arrived");
        let watched = tokio::time::timeout(window, async {
            loop {
                match self.read_frame().await {
                    Ok(f) if is_event(&f) => panic!("{why}: {event} arrived: {f:?}"),
                    Ok(f) => self.pending.push_back(f),
                    Err(end) => panic!("{why}: the connection ended instead ({end:?})"),
                }
            }
        })
        .await;
        assert!(watched.is_err(), "the watch ends only by its deadline");
        self.assert_alive(Some(event), why).await;
    }

    /// Proves the connection works now: a `ping` with a fresh payload is
    /// answered with its `pong`. Frames read meanwhile are kept, unless one
    /// is a Notify named `forbidden`.
    pub async fn assert_alive(&mut self, forbidden: Option<&str>, why: &str) {
        let token = Bytes::from(format!("alive-{:x}", rand::random::<u64>()));
        self.notify("ping", token.clone()).await;
        tokio::time::timeout(WAIT, async {
            loop {
                match self.read_frame().await {
                    Ok(Frame::Notify { name, payload }) if name == "pong" && payload == token => {
                        return;
                    }
                    Ok(Frame::Notify { name, .. }) if forbidden.is_some_and(|e| name == e) => {
                        panic!("{why}: {name} arrived")
                    }
                    Ok(f) => self.pending.push_back(f),
                    Err(end) => panic!("{why}: the connection ended ({end:?})"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{why}: no pong: the connection is not alive"));
    }

    /// Reads until the connection ends; reports how.
    pub async fn ended(&mut self) -> End {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Err(end) = self.read_frame().await {
                    return end;
                }
            }
        })
        .await
        .expect("connection ends in time")
    }

    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}

/// A client that has said `hello` with this nick.
pub async fn rich_client(server: &TestServer, nick: &str) -> (Client, shared::chat::Welcome) {
    let mut c = server.client().await;
    let welcome: shared::chat::Welcome = c
        .rich("hello", &serde_json::json!({"v": 1, "nick": nick}))
        .await
        .expect("hello");
    (c, welcome)
}

impl Client {
    /// The next `msg` for `room`, skipping other rooms' messages.
    pub async fn next_msg(&mut self, room: &str) -> shared::chat::Msg {
        loop {
            let m: shared::chat::Msg = self.event_json("msg").await;
            if m.room == room {
                return m;
            }
        }
    }

    /// A request and its answer: everything sent before is read (and set
    /// aside) by then.
    pub async fn round_trip(&mut self) {
        let _ = self.call("myip", Bytes::new()).await;
    }

    /// Forgets the frames read and set aside so far (after a round trip,
    /// so everything sent before now is among them).
    pub async fn forget_pending(&mut self) {
        let _ = self.call("ping", Bytes::new()).await;
        self.pending.clear();
    }

    /// The Notify frames read and set aside so far: (event, payload).
    pub fn pending_notifies(&self) -> Vec<(String, Bytes)> {
        self.pending
            .iter()
            .filter_map(|f| match f {
                Frame::Notify { name, payload } => Some((name.to_string(), payload.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether a Response for `id` was read and set aside.
    pub fn pending_has_response(&self, id: u32) -> bool {
        self.pending
            .iter()
            .any(|f| matches!(f, Frame::Response { id: i, .. } if *i == id))
    }
}

/// Raw frame sending and reading for tests that drive the socket directly.
pub trait SendFrame {
    /// Sends one frame.
    fn send_frame(&mut self, frame: Frame) -> impl std::future::Future<Output = Result<(), ()>>;
}

impl SendFrame for Ws {
    async fn send_frame(&mut self, frame: Frame) -> Result<(), ()> {
        self.send(Message::Binary(frame.encode()))
            .await
            .map_err(|_| ())
    }
}

impl Client {
    /// Reads for `within`; `Some` with how the connection ended if it did
    /// (frames read meanwhile are dropped).
    pub async fn next_frame_or_end_within(&mut self, within: Duration) -> Option<End> {
        let ended = tokio::time::timeout(within, async {
            loop {
                if let Err(end) = self.read_frame().await {
                    return end;
                }
            }
        })
        .await;
        ended.ok()
    }

    /// Reads until the close frame; its code and reason (`None`: the
    /// connection ended without one).
    pub async fn close_reason(&mut self) -> Option<(u16, String)> {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                        return Some((u16::from(code), reason.to_string()));
                    }
                    Some(Ok(Message::Close(None))) | Some(Err(_)) | None => return None,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .expect("connection ends in time")
    }

    /// The next frame from the socket, or `None` when the connection ends.
    pub async fn next_frame_or_end(&mut self) -> Option<Frame> {
        if let Some(f) = self.pending.pop_front() {
            return Some(f);
        }
        tokio::time::timeout(WAIT, self.read_frame())
            .await
            .ok()?
            .ok()
    }
}

/// The real server binary, started with `args`; stopped (killed) on drop.
pub struct Binary {
    pub child: std::process::Child,
    pub url: String,
}

impl Binary {
    /// Starts it on port 0 without rate limits or per-address budgets
    /// (every test client is 127.0.0.1) and reads the address from its
    /// first line.
    pub fn start(args: &[&std::ffi::OsStr]) -> Self {
        let mut all: Vec<&std::ffi::OsStr> = [
            "--rate-limit",
            "0",
            "--max-connections-per-ip",
            "0",
            "--rooms-per-ip-per-minute",
            "0",
            "--sessions-per-ip-per-minute",
            "0",
        ]
        .iter()
        .map(std::ffi::OsStr::new)
        .collect();
        all.extend_from_slice(args);
        Self::start_raw(&all)
    }

    /// Starts it on port 0 with the default limits (but what `args` sets).
    pub fn start_raw(args: &[&std::ffi::OsStr]) -> Self {
        Self::spawn(
            args,
            if std::env::var_os("CHAT_TEST_SERVER_LOGS").is_some() {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            },
        )
    }

    /// Like [`Binary::start`], with its log (stderr) written to `log`.
    pub fn start_logging(args: &[&std::ffi::OsStr], log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let mut all: Vec<&std::ffi::OsStr> = ["--rate-limit", "0", "--max-connections-per-ip", "0"]
            .iter()
            .map(std::ffi::OsStr::new)
            .collect();
        all.extend_from_slice(args);
        Self::spawn(&all, std::process::Stdio::from(file))
    }

    fn spawn(args: &[&std::ffi::OsStr], stderr: std::process::Stdio) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("server starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self {
            child,
            url: format!("ws://{addr}/socket"),
        }
    }

    /// `GET path` over HTTP/1.1 (blocking): the response body.
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let addr = self
            .url
            .trim_start_matches("ws://")
            .trim_end_matches("/socket")
            .to_owned();
        let mut tcp = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut raw = String::new();
        tcp.read_to_string(&mut raw).expect("response");
        raw.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }

    /// Sends a signal (`-TERM`, `-KILL`…) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "signal delivered");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory under the system's temporary directory.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chat-{tag}-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

mod redis_server;
#[allow(unused_imports)] // each test binary uses some
pub use redis_server::{Partition, Redis, RedisCluster};
