//! The seed flows of the original broadcasting example, over real sockets.

mod common;

use bytes::Bytes;
use common::*;
use futures_util::SinkExt;
use shared::Frame;
use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::frame::{
        Frame as WsFrame,
        coding::{Data, OpCode},
    },
};

#[tokio::test]
async fn ping_answers_pong_with_the_same_payload() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.notify("ping", &b"hi"[..]).await;
    assert_eq!(c.event("pong").await, Bytes::from_static(b"hi"));
    server.stop().await;
}

#[tokio::test]
async fn myip_answers_the_peer_address() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let local = match c.ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.local_addr().expect("local addr"),
        _ => unreachable!("plain tcp"),
    };
    let answer = c.call("myip", Bytes::new()).await;
    assert_eq!(
        std::str::from_utf8(&answer).expect("text"),
        local.to_string()
    );
    server.stop().await;
}

#[tokio::test]
async fn uppercase_is_unicode_aware() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let answer = c
        .call("uppercase", "straße ß émile".as_bytes().to_vec())
        .await;
    assert_eq!(
        std::str::from_utf8(&answer).expect("text"),
        "STRASSE SS ÉMILE"
    );
    server.stop().await;
}

#[tokio::test]
async fn broadcast_reaches_every_seed_client_as_raw_message() {
    let server = TestServer::start(config()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    // Make sure both are in the lobby before broadcasting.
    a.call("myip", Bytes::new()).await;
    b.call("myip", Bytes::new()).await;
    a.notify("broadcast", &b"hello lobby"[..]).await;
    assert_eq!(b.event("message").await, Bytes::from_static(b"hello lobby"));
    assert_eq!(a.event("message").await, Bytes::from_static(b"hello lobby"));
    server.stop().await;
}

#[tokio::test]
async fn long_running_task_answers_done_after_three_seconds() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let started = Instant::now();
    let answer = c.call("long_runing_task", Bytes::new()).await;
    let took = started.elapsed();
    assert_eq!(answer, Bytes::from_static(b"done!"));
    // Not before its three seconds (the task starts after the request was
    // sent). No upper bound beyond the call's own deadline (10 s): a busy
    // machine may answer late, and lateness is not what this shows.
    assert!(took >= Duration::from_secs(3), "answered after {took:?}");
    server.stop().await;
}

#[tokio::test]
async fn reset_stops_the_long_running_task_and_nothing_is_answered() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let sent = Instant::now();
    let id = c.request("long_runing_task", Bytes::new()).await;
    let running = || server.state.stats.long_tasks.load(Ordering::Relaxed);
    let deadline = Instant::now() + WAIT;
    while running() != 1 {
        assert!(Instant::now() < deadline, "the task never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.send(Frame::Reset { id }).await;
    // The server-side task is aborted, not just its answer dropped: it
    // stops before it could have finished by itself. It started after the
    // request was sent, so by itself it ends 3 s after `sent` at the
    // earliest (in practice the reset takes a few milliseconds).
    while running() != 0 {
        assert!(Instant::now() < deadline, "the task never stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = sent.elapsed();
    assert!(
        stopped < Duration::from_secs(3),
        "the task ran its course ({stopped:?}) instead of being aborted"
    );
    // Past the 3 s mark nothing arrives for that id, and the socket still works.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let echo = c.call("uppercase", &b"still here"[..]).await;
    assert_eq!(echo, Bytes::from_static(b"STILL HERE"));
    assert!(
        !c.pending_has_response(id),
        "a reset request must never be answered"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_message_fragmented_into_three_frames_is_reassembled() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    let wire = Frame::notify(name("ping"), &b"fragmented payload"[..]).encode();
    let (one, rest) = wire.split_at(3);
    let (two, three) = rest.split_at(7);
    for (part, opcode, fin) in [
        (one, OpCode::Data(Data::Binary), false),
        (two, OpCode::Data(Data::Continue), false),
        (three, OpCode::Data(Data::Continue), true),
    ] {
        c.ws.send(Message::Frame(WsFrame::message(
            Bytes::copy_from_slice(part),
            opcode,
            fin,
        )))
        .await
        .expect("send fragment");
    }
    assert_eq!(
        c.event("pong").await,
        Bytes::from_static(b"fragmented payload")
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_request_gets_unknown_event_and_unknown_notify_is_ignored() {
    let server = TestServer::start(config()).await;
    let mut c = server.client().await;
    c.notify("no_such_notify", Bytes::new()).await;
    let err = c.rich::<serde_json::Value>("no_such_call", &()).await;
    assert_eq!(
        err.map_err(|e| e.code),
        Err(shared::chat::ErrorCode::UnknownEvent)
    );
    server.stop().await;
}

/// The original server relays a `broadcast` whatever its bytes, and keeps
/// one sender's broadcasts in order. Ours stores text before delivering it
/// and relays other bytes as they are: those wait behind the text still
/// being stored (with the default on-disk store they used to overtake it).
#[tokio::test]
async fn broadcasts_of_text_and_bytes_arrive_in_the_order_sent() {
    let data = temp_dir("relay-order");
    let store = server::sqlite::SqliteStore::open(
        &data,
        server::sqlite::Retention {
            max_messages: 1_000,
            max_age: None,
        },
    )
    .expect("store");
    let server = TestServer::start_with_store(config(), std::sync::Arc::new(store)).await;
    let mut sender = server.client().await;
    let mut reader = server.client().await;
    let all_bytes: Vec<u8> = (0..=255).collect();
    let sent: Vec<Vec<u8>> = vec![
        b"one".to_vec(),
        all_bytes.clone(),
        b"two".to_vec(),
        vec![0xc0, 0xff],
        b"three".to_vec(),
    ];
    for round in 0..5 {
        for payload in &sent {
            sender.notify("broadcast", payload.clone()).await;
        }
        for c in [&mut reader, &mut sender] {
            let mut got = Vec::new();
            for _ in 0..sent.len() {
                got.push(c.event("message").await.to_vec());
            }
            assert_eq!(got, sent, "round {round}: in the order sent");
        }
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}
