//! The socket client against a real server, in a real browser: notify,
//! call, Reset, and recovery of messages missed while disconnected.
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use bytes::Bytes;
use common::*;
use frontend::net::{
    chat::{ChatClient, ChatEvent},
    socket::{CallError, Socket, Status},
};
use futures_util::StreamExt;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn open_socket() -> Socket {
    let socket = Socket::connect(socket_url());
    let mut statuses = socket.statuses();
    within(10_000, async {
        while let Some(s) = statuses.next().await {
            if s == Status::Online {
                return;
            }
        }
    })
    .await
    .expect("socket opens");
    socket
}

#[wasm_bindgen_test]
async fn notify_and_call_reach_the_server() {
    let socket = open_socket().await;
    let mut pongs = socket.on("pong");
    assert!(socket.notify("ping", Bytes::from_static(b"from wasm")));
    let pong = within(5_000, pongs.next()).await.flatten().expect("pong");
    assert_eq!(pong, Bytes::from_static(b"from wasm"));
    let upper = socket
        .call("uppercase", Bytes::from_static("grüße".as_bytes()), 5_000)
        .await
        .expect("answer");
    assert_eq!(upper, Bytes::from("GRÜSSE".as_bytes()));
    socket.close();
}

#[wasm_bindgen_test]
async fn a_timed_out_call_sends_reset_and_the_server_stops_the_work() {
    let socket = open_socket().await;
    let call = socket.call("long_runing_task", Bytes::new(), 800);
    let started = frontend::net::now_ms();
    // The task is running on the server while we wait.
    let running = async {
        loop {
            if health().await["long_tasks"].as_u64() == Some(1) {
                return;
            }
            frontend::net::sleep_ms(50).await;
        }
    };
    let (result, ()) = futures_util::future::join(call, async {
        within(700, running).await.expect("server runs the task");
    })
    .await;
    assert_eq!(result, Err(CallError::TimedOut));
    // The Reset aborts it: gone long before its 3 s are up.
    let mut stopped = false;
    for _ in 0..40 {
        if health().await["long_tasks"].as_u64() == Some(0) {
            stopped = true;
            break;
        }
        frontend::net::sleep_ms(25).await;
    }
    let took = frontend::net::now_ms() - started;
    assert!(stopped, "task still running after the reset");
    assert!(took < 2_500.0, "stopped only after {took} ms");
    socket.close();
}

#[wasm_bindgen_test]
async fn missed_messages_are_recovered_after_a_disconnect() {
    let (alice, mut alice_events) =
        ChatClient::connect(socket_url(), Some("wasm-alice".into()), None);
    let (bob, mut bob_events) = ChatClient::connect(socket_url(), Some("wasm-bob".into()), None);
    welcomed(&mut alice_events).await;
    welcomed(&mut bob_events).await;
    alice.join("wasm-recovery").await.expect("alice joins");
    bob.join("wasm-recovery").await.expect("bob joins");

    bob.socket().close();
    next_event(&mut bob_events, 5_000, "bob offline", |e| {
        matches!(e, ChatEvent::Status(Status::Offline { .. }))
    })
    .await;
    let mut cids = Vec::new();
    for i in 1..=3 {
        cids.push(alice.say("wasm-recovery", &format!("missed {i}")));
    }
    // Acknowledgements may come in any order; wait for all three.
    let mut unacked: std::collections::HashSet<String> = cids.iter().cloned().collect();
    while !unacked.is_empty() {
        let said = next_event(
            &mut alice_events,
            5_000,
            "ack",
            |e| matches!(e, ChatEvent::Said { cid, .. } if unacked.contains(cid)),
        )
        .await;
        if let ChatEvent::Said { cid, result } = said {
            assert!(result.is_ok(), "stored");
            unacked.remove(&cid);
        }
    }

    bob.socket().retry_now();
    let welcome = welcomed(&mut bob_events).await;
    let room = welcome
        .rooms
        .iter()
        .find(|r| r.room == "wasm-recovery")
        .expect("room is back");
    assert!(room.recovered, "exact recovery");
    let texts: Vec<&str> = room.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["missed 1", "missed 2", "missed 3"]);
    alice.socket().close();
    bob.socket().close();
}
