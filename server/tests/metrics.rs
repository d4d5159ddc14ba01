//! `/healthz` and `/metrics` report what the server did.

mod common;

use common::{TestServer, config, name};
use shared::Frame;

#[tokio::test]
async fn healthz_and_metrics_report_traffic() {
    let server = TestServer::start(config()).await;
    let (status, body) = server.http_get("/healthz").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["status"], "ok");

    let mut a = server.client().await;
    let mut b = server.client().await;
    assert_eq!(server.metric_reaches("chat_connections", 2.0).await, 2.0);
    let before_in = server.metric("chat_messages_in_total").await;
    let before_out = server.metric("chat_messages_out_total").await;
    let before_bytes = server.metric("chat_bytes_out_total").await;
    for i in 0..5 {
        a.send(Frame::notify(
            name("broadcast"),
            format!("m{i}").into_bytes(),
        ))
        .await;
    }
    // Both members got all five (the sender too): protocol frames of
    // 1 (opcode) + 1 + 7 ("message") + 2 ("m0") = 11 bytes each.
    let mut received = 0;
    for c in [&mut b, &mut a] {
        for i in 0..5 {
            let payload = c.event("message").await;
            assert_eq!(payload, format!("m{i}").as_bytes());
            received += Frame::notify(name("message"), payload).encode().len();
        }
    }
    assert_eq!(received, 110);
    assert_eq!(
        server.metric("chat_messages_in_total").await - before_in,
        5.0
    );
    let out = server
        .metric_reaches("chat_messages_out_total", before_out + 10.0)
        .await;
    assert_eq!(out - before_out, 10.0, "five messages to two members");
    assert_eq!(
        server.metric("chat_bytes_out_total").await - before_bytes,
        received as f64,
        "the bytes of exactly those ten frames"
    );
    assert_eq!(server.metric("chat_fanout_seconds_count").await, 5.0);
    assert_eq!(server.metric("chat_rooms").await, 1.0, "the lobby");

    let (_, body) = server.http_get("/healthz").await;
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["connections"], 2);
    a.close().await;
    b.close().await;
    server.stop().await;
}
