//! A client that connects and never reads must not stall its room.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use shared::Frame;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: usize = 20_000;
const WINDOW: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_client_does_not_stall_room() {
    let mut cfg = config();
    cfg.outbox_frames = 1024;
    cfg.max_text_chars = 2048;
    let server = TestServer::start(cfg).await;

    // The stuck client: connected, in the lobby, never reads.
    let mut stuck = server.client().await;
    stuck.call("myip", bytes::Bytes::new()).await;

    // The healthy member counts every `message` it receives, in order.
    let mut healthy = server.client().await;
    healthy.call("myip", bytes::Bytes::new()).await;
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let receiver = tokio::spawn(async move {
        let mut got = 0usize;
        while got < MESSAGES {
            let Some(Ok(msg)) = healthy.ws.next().await else {
                panic!("healthy client lost its connection after {got} messages");
            };
            if let Message::Binary(b) = msg
                && let Ok(Frame::Notify { name, payload }) = Frame::decode(&b)
                && name == "message"
            {
                let expected = format!("{got:05}");
                assert_eq!(&payload[..5], expected.as_bytes(), "in order, no loss");
                got += 1;
                let _ = count_tx.send(got);
            }
        }
        got
    });

    // The sender posts 1 KiB broadcasts; it reads its own copies as it goes
    // (it is a lobby member too) and stays within a window of the healthy one.
    let sender = server.client().await;
    let (mut sink, mut source) = sender.ws.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });
    for i in 0..MESSAGES {
        while i >= *count_rx.borrow() + WINDOW {
            tokio::time::timeout(WAIT, count_rx.changed())
                .await
                .expect("the room keeps delivering")
                .expect("receiver alive");
        }
        let mut text = format!("{i:05}").into_bytes();
        text.resize(1024, b'.');
        let frame = Frame::notify(name("broadcast"), text).encode();
        sink.send(Message::Binary(frame)).await.expect("send");
    }
    let got = tokio::time::timeout(Duration::from_secs(60), receiver)
        .await
        .expect("all delivered in time")
        .expect("receiver");
    assert_eq!(got, MESSAGES);

    // The stuck client was cut off: a 4008 close frame if it could still be
    // written, otherwise the connection is simply gone.
    match stuck.ended().await {
        End::Closed(code) => assert_eq!(code, 4008),
        End::Dropped => {}
        End::ClosedNoCode => panic!("close frame without the 4008 code"),
    }
    assert_eq!(
        server
            .metric_reaches("chat_slow_consumer_disconnects_total", 1.0)
            .await,
        1.0,
        "/metrics counts the slow consumer"
    );
    drain.abort();
    server.stop().await;
}
