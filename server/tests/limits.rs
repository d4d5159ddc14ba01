//! Configured limits: connections (1013), origin (403 at the handshake),
//! rate (errors, then 1008), keep-alive, and graceful shutdown (1001).

mod common;

use bytes::Bytes;
use common::*;
use shared::chat::ErrorCode;
use std::time::Duration;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[tokio::test]
async fn connections_past_the_limit_are_closed_1013() {
    let mut cfg = config();
    cfg.max_connections = 2;
    let server = TestServer::start(cfg).await;
    let mut a = server.client().await;
    let _b = server.client().await;
    let mut third = server.client().await;
    match third.ended().await {
        End::Closed(code) => assert_eq!(code, 1013),
        other => panic!("expected 1013, got {other:?}"),
    }
    assert_eq!(
        a.call("uppercase", &b"a"[..]).await,
        Bytes::from_static(b"A")
    );
    // A slot frees up when a client leaves: until the server has seen the
    // leaver go, a newcomer is closed with 1013 (and tries again).
    a.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut refusals = 0;
    loop {
        let mut c = server.client().await;
        match c.try_request("uppercase", &b"b"[..]).await {
            Ok(id) => match c.response_or_end(id).await {
                Ok(answer) => {
                    assert_eq!(answer, Bytes::from_static(b"B"));
                    break;
                }
                Err(End::Closed(1013)) => refusals += 1,
                Err(other) => panic!("a newcomer is served or told 1013, not {other:?}"),
            },
            // The 1013 close reached the socket before the request left.
            Err(()) => refusals += 1,
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a freed slot is reused ({refusals} refusals)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

/// Opens the socket with an `Origin` (and optionally a `Host`): the
/// client, or the HTTP status of a refused handshake.
async fn connect_with_origin(
    server: &TestServer,
    origin: &str,
    host: Option<&str>,
) -> Result<Client, u16> {
    let mut req = request(&server.url());
    req.headers_mut()
        .insert("Origin", HeaderValue::from_str(origin).expect("origin"));
    if let Some(host) = host {
        req.headers_mut()
            .insert("Host", HeaderValue::from_str(host).expect("host"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(Client::from_ws(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

#[tokio::test]
async fn foreign_origins_are_refused_403_before_the_upgrade_and_own_or_listed_ones_pass() {
    let mut cfg = config();
    cfg.allowed_origins = vec!["http://localhost:8080".into()];
    let server = TestServer::start(cfg).await;
    let refused = connect_with_origin(&server, "http://evil.example", None).await;
    assert_eq!(refused.err(), Some(403), "no 101 for a foreign origin");
    // DNS rebinding: evil.example resolved to this server; its page sends
    // a matching Host. The Host header is not what is trusted.
    let rebound =
        connect_with_origin(&server, "http://evil.example:80", Some("evil.example:80")).await;
    assert_eq!(rebound.err(), Some(403), "Host is never trusted");
    let own = format!("http://{}", server.addr);
    let localhost = format!("http://localhost:{}", server.addr.port());
    for origin in [own.as_str(), localhost.as_str(), "http://localhost:8080"] {
        let mut c = connect_with_origin(&server, origin, None)
            .await
            .unwrap_or_else(|status| panic!("{origin} refused with {status}"));
        assert_eq!(
            c.call("uppercase", &b"x"[..]).await,
            Bytes::from_static(b"X"),
            "{origin}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_public_origin_replaces_the_derived_one() {
    let mut cfg = config();
    cfg.public_origins = vec!["https://chat.example.com".into()];
    let server = TestServer::start(cfg).await;
    let own = format!("http://{}", server.addr);
    assert_eq!(
        connect_with_origin(&server, &own, None).await.err(),
        Some(403)
    );
    assert!(
        connect_with_origin(&server, "https://chat.example.com", None)
            .await
            .is_ok()
    );
    server.stop().await;
}

#[tokio::test]
async fn over_the_rate_requests_get_rate_limited_then_abuse_closes_1008() {
    let mut cfg = config();
    cfg.rate_limit = 5;
    cfg.rate_burst = Some(5);
    cfg.abuse_threshold = Some(20);
    let server = TestServer::start(cfg).await;
    let mut c = server.client().await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(c.request("rooms", &b"{}"[..]).await);
    }
    let mut limited = 0;
    for id in ids {
        let answer = c.response(id).await;
        if let Ok(Err(e)) = shared::chat::parse_envelope::<serde_json::Value>(&answer) {
            assert_eq!(e.code, ErrorCode::RateLimited);
            limited += 1;
        }
    }
    assert!(limited >= 4, "{limited} of 10 were limited");
    assert!(server.metric("chat_rate_limited_total").await >= f64::from(limited));
    // Keep flooding: the connection is closed for abuse.
    for _ in 0..40 {
        c.notify("ping", Bytes::new()).await;
    }
    match c.ended().await {
        End::Closed(code) => assert_eq!(code, 1008),
        other => panic!("expected 1008, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn peers_that_stop_answering_pings_are_dropped() {
    let mut cfg = config();
    cfg.ping_interval_secs = 0.2;
    let server = TestServer::start(cfg).await;
    let mut silent = server.client().await;
    // Not reading means not answering pings (tungstenite answers while
    // reading), so the test watches the server's count instead of reading.
    let connections = || {
        server
            .state
            .stats
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(connections(), 1);
    let deadline = tokio::time::Instant::now() + WAIT;
    while connections() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "silent peer is dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    silent.ended().await;
    // A client that keeps reading stays connected past several intervals.
    let mut alive = server.client().await;
    alive
        .assert_no_event_within(
            "none",
            Duration::from_secs(1),
            "a reading client answers pings and stays",
        )
        .await;
    assert_eq!(connections(), 1);
    assert_eq!(
        alive.call("uppercase", &b"y"[..]).await,
        Bytes::from_static(b"Y")
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001() {
    let server = TestServer::start(config()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.call("myip", Bytes::new()).await;
    b.call("myip", Bytes::new()).await;
    let stopping = tokio::spawn(server.stop());
    for c in [&mut a, &mut b] {
        match c.ended().await {
            End::Closed(code) => assert_eq!(code, 1001),
            other => panic!("expected 1001, got {other:?}"),
        }
    }
    stopping.await.expect("server stopped");
}

/// Shutting down, the server tells nobody that the others left: every
/// client is being closed (1001) and comes back when the server does, so
/// "X left" lines and emptied member lists would only be wrong.
#[tokio::test]
async fn shutdown_tells_nobody_that_the_others_left() {
    let server = TestServer::start(config()).await;
    let mut clients = Vec::new();
    for nick in ["ann", "ben", "cy", "dee"] {
        clients.push(rich_client(&server, nick).await.0);
    }
    // Everyone has seen everyone arrive (presence flows), and is settled.
    for c in &mut clients {
        c.assert_alive(None, "before the shutdown").await;
    }
    let stopping = tokio::spawn(server.stop());
    for c in &mut clients {
        while let Some(frame) = c.next_frame_or_end().await {
            if let shared::Frame::Notify { name, payload } = &frame
                && name == "presence"
            {
                let p: shared::chat::Presence = serde_json::from_slice(payload).expect("json");
                assert_ne!(
                    p.what,
                    shared::chat::PresenceKind::Leave,
                    "told {} left",
                    p.nick
                );
            }
        }
    }
    stopping.await.expect("server stopped");
}
