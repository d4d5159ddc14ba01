//! Every bad-input row of the protocol gets its close code or HTTP status,
//! and the server keeps serving other clients right after.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::SinkExt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

async fn assert_healthy(server: &TestServer) {
    let mut other = server.client().await;
    let answer = other.call("uppercase", &b"ok"[..]).await;
    assert_eq!(
        answer,
        Bytes::from_static(b"OK"),
        "another client is served"
    );
}

async fn closes_with(server: &TestServer, msg: Message, code: u16) {
    let mut c = server.client().await;
    c.ws.send(msg).await.expect("send");
    match c.ended().await {
        End::Closed(got) => assert_eq!(got, code),
        other => panic!("expected close {code}, got {other:?}"),
    }
    assert_healthy(server).await;
}

#[tokio::test]
async fn text_message_closes_1003() {
    let server = TestServer::start(config()).await;
    closes_with(&server, Message::Text("hello".into()), 1003).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_frames_close_1002() {
    let server = TestServer::start(config()).await;
    let cases: [(&str, &[u8]); 6] = [
        ("empty message", &[]),
        ("unknown opcode", &[9, 0, 0]),
        ("truncated header", &[2, 0, 0]),
        ("name past the end", &[1, 10, b'p', b'i']),
        ("invalid UTF-8 name", &[1, 2, 0xc3, 0x28]),
        ("response from a client", &[4, 0, 0, 0, 1, b'x']),
    ];
    for (what, bytes) in cases {
        let mut c = server.client().await;
        c.ws.send(Message::Binary(Bytes::copy_from_slice(bytes)))
            .await
            .expect("send");
        match c.ended().await {
            End::Closed(code) => assert_eq!(code, 1002, "{what}"),
            other => panic!("{what}: expected close 1002, got {other:?}"),
        }
        assert_healthy(&server).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn message_over_the_limit_closes_1009() {
    let mut cfg = config();
    cfg.max_message_bytes = 1024;
    let server = TestServer::start(cfg).await;
    // Just under the limit is fine.
    let mut c = server.client().await;
    c.notify("ping", vec![b'x'; 1000]).await;
    assert_eq!(c.event("pong").await.len(), 1000);
    // Over it closes with 1009.
    let big = shared::Frame::notify(name("ping"), vec![b'x'; 2048]).encode();
    closes_with(&server, Message::Binary(big), 1009).await;
    server.stop().await;
}

async fn raw_http(server: &TestServer, request: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn upgrade_without_subprotocol_is_refused_with_400_and_a_reason() {
    let server = TestServer::start(config()).await;
    let answer = raw_http(
        &server,
        "GET /socket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Connection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("text/plain"), "{answer}");
    assert!(answer.contains("websocket.io-rpc-v0.1"), "{answer}");
    assert_healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn plain_get_is_answered_426_with_a_reason() {
    let server = TestServer::start(config()).await;
    let answer = raw_http(
        &server,
        "GET /socket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("upgrade: websocket"),
        "{answer}"
    );
    assert!(answer.contains("send an upgrade request"), "{answer}");
    assert_healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn garbage_bytes_on_the_tcp_socket_do_not_hurt_others() {
    let server = TestServer::start(config()).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    tcp.write_all(&[0xff; 4096]).await.expect("write");
    // The server answers 400 and closes the connection (a reset after the
    // answer is fine: the rest of the garbage was never read).
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer)).await;
    assert!(
        ended.is_ok(),
        "the server closes a connection that sends garbage"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert_healthy(&server).await;
    // Nothing of the garbage connection (or the other client) is held:
    // in the end only the asking request's own connection is open.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, health) = server.http_get("/healthz").await;
        let health: serde_json::Value = serde_json::from_str(&health).expect("json");
        if health["open_tcp"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections still held: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
