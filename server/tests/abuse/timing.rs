//! Time: every connection has a deadline for its request head, its first
//! frame and each write; half-sent requests count against the limits;
//! shutdown ends in bounded time whatever the peers do.

use super::*;
use std::io::Write;
use tokio::io::AsyncWriteExt;

/// Connects to the server from `local` (any 127.0.0.0/8 address works on
/// loopback: a second "client address").
async fn tcp_from(server: &Server, local: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{local}:0").parse().expect("addr"))
        .expect("bind");
    socket.connect(server.addr).await.expect("connect")
}

/// Whether the server closed `tcp` (a read returns 0 or fails) within `within`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let result = tokio::time::timeout(within, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    result.ok().map(|()| started.elapsed())
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_request_head_sent_one_byte_a_second_is_cut_at_the_header_deadline() {
    const T: &str = "slowloris";
    let server = Server::start(&[]);
    let mut tcp = tcp_from(&server, "127.0.0.1").await;
    let head = b"GET /socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
    let started = Instant::now();
    let mut sent = 0;
    for byte in head {
        if tcp.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        if closed_within(&mut tcp, Duration::from_secs(1))
            .await
            .is_some()
        {
            break;
        }
    }
    let cut = started.elapsed();
    report(
        T,
        format!("one byte a second: cut after {cut:.1?} ({sent} bytes sent; deadline 10 s)"),
    );
    assert!(
        cut < Duration::from_secs(13),
        "a dribbled request head lived {cut:?}"
    );
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn half_sent_requests_count_against_the_address_limit_and_do_not_lock_others_out() {
    const T: &str = "half-sent";
    let metrics = free_addr();
    let server = Server::start(&["--header-timeout-secs", "3", "--metrics-addr", &metrics]);
    let mut held = Vec::new();
    for _ in 0..2_000 {
        let mut tcp = tcp_from(&server, "127.0.0.1").await;
        let _ = tcp.write_all(b"GET /socket HTTP/1.1\r\nHost: x\r\n").await;
        held.push(tcp);
    }
    // The server accepts and refuses at its own pace on a busy machine:
    // sample until a thousand were refused (or 10 s), every sample within
    // the limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = 0.0_f64;
    let refused = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now_open = server.metric("chat_tcp_connections");
        assert!(now_open <= 256.0, "{now_open} half-sent requests held");
        open = open.max(now_open);
        let refused = server.metric("chat_refused_connections_total");
        if refused >= 1_000.0 || Instant::now() >= deadline {
            break refused;
        }
    };
    report(
        T,
        format!(
            "2,000 half-sent requests from one address: {open} held (limit 256 per address), {refused} refused"
        ),
    );
    assert!(open <= 256.0, "{open} half-sent requests held");
    assert!(refused >= 1_000.0, "the rest were refused ({refused})");
    // Another address is not locked out.
    let socket = tcp_from(&server, "127.0.0.2").await;
    let (ws, _) = tokio_tungstenite::client_async(
        common::request(&server.url),
        tokio_tungstenite::MaybeTlsStream::Plain(socket),
    )
    .await
    .expect("another address connects");
    let mut other = Client::from_ws(ws);
    assert_eq!(
        other.call("uppercase", &b"ok"[..]).await,
        bytes::Bytes::from_static(b"OK")
    );
    // And the half-sent ones are gone after the head deadline.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = server.metric("chat_tcp_connections");
    report(
        T,
        format!("after the 3 s head deadline: {after} TCP connections held"),
    );
    assert!(after <= 2.0, "{after} still held");
    drop(held);
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn sigterm_ends_the_server_in_bounded_time_with_a_half_sent_request_open() {
    const T: &str = "sigterm";
    let mut server = Server::start(&[]);
    let mut slow = tcp_from(&server, "127.0.0.1").await;
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a request");
    // A WebSocket peer that stopped reading, too.
    let (mut stuck, _) = tokio_tungstenite::connect_async(common::request(&server.url))
        .await
        .expect("connects");
    use futures_util::SinkExt;
    stuck
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            shared::Frame::notify(common::name("ping"), &b"x"[..]).encode(),
        ))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let took = server.terminate();
    report(
        T,
        format!(
            "SIGTERM with a half-sent request and a silent socket open: exited after {took:.2?} (bound: --shutdown-secs 5)"
        ),
    );
    assert!(took < Duration::from_secs(7), "shutdown took {took:?}");
    drop((slow, stuck));
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_peer_that_stops_reading_is_dropped_at_the_write_deadline() {
    const T: &str = "zero-window";
    let server = Server::start(&[
        "--write-timeout-secs",
        "3",
        "--rate-limit",
        "0",
        "--ping-interval-secs",
        "600",
    ]);
    // Its socket's receive buffer is small and never read: the window
    // closes as soon as the server has sent a little.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4 * 1024).expect("buffer");
    let tcp = socket.connect(server.addr).await.expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(
        common::request(&server.url),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .expect("upgrade");
    let mut stuck = Client::from_ws(ws);
    hello(&mut stuck, "stuck").await;
    let _: shared::chat::RoomState = stuck
        .rich("join", &serde_json::json!({"room": "z"}))
        .await
        .expect("join");
    // Someone talks in the room; the stuck peer never reads again.
    let mut talker = server.client().await;
    hello(&mut talker, "talker").await;
    let _: shared::chat::RoomState = talker
        .rich("join", &serde_json::json!({"room": "z"}))
        .await
        .expect("join");
    // 6 MB for it: more than the kernel's buffers take (up to 4 MB on
    // loopback), less than that and its outbox (4 MiB) together, so the
    // server's writes wait on it, and then nothing more comes.
    let text = "z".repeat(1_000);
    let started = Instant::now();
    let watcher = {
        let addr = server.addr;
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let raw = raw_get(addr, "/healthz");
                let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                let health: serde_json::Value =
                    serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
                if health["connections"].as_u64() == Some(1) {
                    return Some(started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        })
    };
    fill(&mut talker, "z", 6_000, &text, 32).await;
    let traffic = started.elapsed();
    let dropped = watcher.await.expect("watcher");
    let slow = server.metric("chat_slow_consumer_disconnects_total");
    report(
        T,
        format!(
            "a peer with a closed TCP window, 6 MB sent to it over {traffic:.2?}: dropped {dropped:.2?} after the traffic began (write deadline 3 s here, 10 s by default), {slow} closed for overflowing instead"
        ),
    );
    assert!(
        dropped.is_some_and(|d| d < traffic + Duration::from_secs(5)),
        "dropped after {dropped:?}"
    );
    assert!(dropped.is_some(), "the stuck peer was never dropped");
    drop(stuck);
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_socket_that_never_says_anything_is_closed_at_the_first_frame_deadline() {
    const T: &str = "silent";
    let server = Server::start(&["--first-frame-timeout-secs", "2"]);
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(server.client().await);
    }
    let started = Instant::now();
    let mut codes = std::collections::BTreeMap::new();
    for c in &mut silent {
        let code = match c.ended().await {
            common::End::Closed(code) => code,
            _ => 0,
        };
        *codes.entry(code).or_insert(0) += 1;
    }
    let took = started.elapsed();
    report(
        T,
        format!(
            "200 sockets that never sent a frame: all closed within {took:.1?} of the 2 s deadline, codes {codes:?}"
        ),
    );
    assert_eq!(codes.get(&1008), Some(&200), "{codes:?}");
    assert!(
        sockets_fall_to(&server, 0, Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn ping_and_reset_floods_count_toward_the_rate_limit() {
    const T: &str = "control-flood";
    let server = Server::start(&[]);
    for what in ["websocket ping", "reset"] {
        let mut c = server.client().await;
        c.notify("ping", &b"hi"[..]).await;
        let started = Instant::now();
        let mut sent = 0;
        let code = loop {
            let frame = match what {
                "reset" => tokio_tungstenite::tungstenite::Message::Binary(
                    shared::Frame::Reset { id: sent }.encode(),
                ),
                _ => tokio_tungstenite::tungstenite::Message::Ping(bytes::Bytes::from_static(b"p")),
            };
            use futures_util::SinkExt;
            if c.ws.send(frame).await.is_err() {
                break c.ended().await;
            }
            sent += 1;
            if sent % 200 == 0
                && let Some(end) = c.next_frame_or_end_within(Duration::from_millis(1)).await
            {
                break end;
            }
            if started.elapsed() > Duration::from_secs(20) {
                panic!("a {what} flood was never stopped");
            }
        };
        report(
            T,
            format!(
                "{what} flood: {sent} sent, then {code:?} after {:.2?}",
                started.elapsed()
            ),
        );
        assert!(
            matches!(code, common::End::Closed(1008)),
            "{what} flood ended with {code:?}"
        );
    }
    // The reason reaches the client with the code.
    let mut c = server.client().await;
    for _ in 0..2_000 {
        c.notify("ping", &b"x"[..]).await;
    }
    let reason = c.close_reason().await;
    report(T, format!("abuse close as the client saw it: {reason:?}"));
    assert_eq!(reason, Some((1008, "too many messages".to_owned())));
}

/// `GET path` on a blocking socket: the whole response.
fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::Read;
    let Ok(mut tcp) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut raw = String::new();
    let _ = tcp.read_to_string(&mut raw);
    raw
}
