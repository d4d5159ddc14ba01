//! Endpoints: the origin check cannot be fooled with `Host`, a refused
//! origin never gets a 101, `/metrics` can live off the public port,
//! `/healthz` is readable by the chat's own pages and no other, and the original demo's
//! binary broadcasts go through byte for byte.

use super::*;

fn handshake(origin: &str, host: &str) -> String {
    format!(
        "GET /socket HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: websocket.io-rpc-v0.1\r\n\r\n"
    )
}

fn status(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn origins_are_checked_against_the_public_origin_never_host() {
    const T: &str = "origin";
    let server = Server::start(&["--in-memory"]);
    let own = format!("http://{}", server.addr);
    let ok = server.http(&handshake(&own, &server.addr.to_string()));
    let foreign = server.http(&handshake("http://evil.example", &server.addr.to_string()));
    let rebound = server.http(&handshake(
        &format!("http://evil.example:{}", server.addr.port()),
        &format!("evil.example:{}", server.addr.port()),
    ));
    report(
        T,
        format!(
            "own origin: {}; foreign origin: {}; DNS rebinding (Host and Origin evil.example): {}",
            status(&ok),
            status(&foreign),
            status(&rebound)
        ),
    );
    assert_eq!(status(&ok), 101);
    assert_eq!(status(&foreign), 403, "refused before any upgrade");
    assert_eq!(status(&rebound), 403, "Host is not trusted");
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn metrics_move_off_the_public_port_and_healthz_is_for_allowed_origins_only() {
    const T: &str = "endpoints";
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = Server::start(&["--in-memory", "--metrics-addr", &metrics_addr]);
    let (public_head, _) = server.get("/metrics");
    let mut private = std::net::TcpStream::connect(&metrics_addr).expect("metrics port");
    use std::io::{Read, Write};
    write!(
        private,
        "GET /metrics HTTP/1.1\r\nHost: {metrics_addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = String::new();
    private.read_to_string(&mut raw).expect("response");
    let health_from = |origin: &str| {
        let raw = server.http(&format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n",
            server.addr
        ));
        raw.split_once("\r\n\r\n")
            .map_or(raw.as_str(), |(head, _)| head)
            .to_ascii_lowercase()
            .lines()
            .find_map(|l| {
                l.strip_prefix("access-control-allow-origin:")
                    .map(|v| v.trim().to_owned())
            })
    };
    let own = format!("http://{}", server.addr);
    let for_own = health_from(&own);
    let for_foreign = health_from("http://evil.example");
    report(
        T,
        format!(
            "/metrics on the public port: {}; on --metrics-addr: {}; /healthz CORS header for its own origin: {for_own:?}, for a foreign one: {for_foreign:?}",
            status(&public_head),
            status(&raw),
        ),
    );
    assert_eq!(status(&public_head), 404);
    assert_eq!(status(&raw), 200);
    assert!(raw.contains("chat_connections"));
    assert_eq!(for_own.as_deref(), Some(own.as_str()));
    assert_eq!(for_foreign, None, "a foreign page cannot read /healthz");
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn the_original_demos_binary_broadcasts_are_relayed_byte_for_byte() {
    const T: &str = "binary-broadcast";
    let server = Server::start(&["--in-memory"]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    // Ask something first, so both are in the lobby before the broadcast.
    a.call("myip", bytes::Bytes::new()).await;
    b.call("myip", bytes::Bytes::new()).await;
    let payload: Vec<u8> = vec![0xff, 0x00, 0xfe, b'h', b'i', 0x80];
    a.notify("broadcast", payload.clone()).await;
    let got_b = b.event("message").await;
    let got_a = a.event("message").await;
    report(
        T,
        format!("sent {payload:02x?}; relayed {got_b:02x?} to the other, {got_a:02x?} back"),
    );
    assert_eq!(&got_b[..], &payload[..]);
    assert_eq!(&got_a[..], &payload[..], "as the original, the sender too");
}
