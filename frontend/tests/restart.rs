//! Reconnect after the server restarts, with a message typed meanwhile
//! delivered exactly once. Its own test binary: it restarts the server.
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use frontend::net::{
    chat::{ChatClient, ChatEvent},
    socket::Status,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn reconnects_after_the_server_restarts_and_sends_the_queue_once() {
    let (client, mut events) = ChatClient::connect(socket_url(), Some("wasm-restart".into()), None);
    welcomed(&mut events).await;
    client.join("wasm-restart").await.expect("join");

    restart_server().await;
    next_event(&mut events, 10_000, "lost connection", |e| {
        matches!(
            e,
            ChatEvent::Status(Status::Reconnecting { .. } | Status::Connecting)
        )
    })
    .await;
    // Typed while the connection is down: queued.
    let cid = client.say("wasm-restart", "queued across a restart");
    let welcome = welcomed(&mut events).await;
    assert!(
        welcome.rooms.iter().any(|r| r.room == "wasm-restart"),
        "the room is joined again after the restart"
    );
    let mut deliveries = 0;
    let mut acked = false;
    let _ = within(3_000, async {
        loop {
            match next_event(&mut events, 60_000, "message", |_| true).await {
                ChatEvent::Msg(m) if m.text == "queued across a restart" => deliveries += 1,
                ChatEvent::Said { cid: c, result } if c == cid => {
                    assert!(result.is_ok(), "stored after the restart");
                    acked = true;
                }
                _ => {}
            }
        }
    })
    .await;
    assert!(acked, "the queued message was acknowledged");
    assert_eq!(deliveries, 1, "delivered exactly once");
    assert_eq!(client.queued(), 0);
    client.socket().close();
}
