//! Byte compatibility with the original library: a server built on
//! `axum-socket-io` 0.1.0, driven by a client that speaks through our
//! `shared` codec (notify both ways, call/response, reset).

mod common;

use axum_socket_io::{Procedure, SocketIo, SocketIoUpgrade};
use bytes::Bytes;
use common::{Client, WAIT};
use shared::Frame;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

#[derive(Default)]
struct Seen {
    started: AtomicU32,
    stopped: AtomicU32,
    finished: AtomicU32,
}

struct Guard(Arc<Seen>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

async fn handle(mut socket: SocketIo, seen: Arc<Seen>) {
    let notifier = socket.notifier();
    while let Ok(ev) = socket.recv().await {
        match ev {
            Procedure::Notify(req) => match req.method() {
                "ping" => {
                    let _ = socket.notify("pong", req.data()).await;
                }
                "poke" => {
                    let _ = notifier.notify("poked", b"from the original").await;
                }
                _ => {}
            },
            Procedure::Call(req, res, c) => match req.method() {
                "uppercase" => {
                    let text = String::from_utf8_lossy(req.data()).to_uppercase();
                    let _ = res.send(text).await;
                }
                "slow" => {
                    let seen = seen.clone();
                    c.spawn_and_abort_on_reset(async move {
                        seen.started.fetch_add(1, Ordering::SeqCst);
                        let _guard = Guard(seen.clone());
                        tokio::time::sleep(Duration::from_millis(1_500)).await;
                        seen.finished.fetch_add(1, Ordering::SeqCst);
                        let _ = res.send("slow done").await;
                    });
                }
                _ => {}
            },
        }
    }
}

async fn original_server(seen: Arc<Seen>) -> String {
    let app = axum07::Router::new().route(
        "/socket",
        axum07::routing::get(move |ws: SocketIoUpgrade| {
            let seen = seen.clone();
            async move { ws.on_upgrade(16, move |socket| handle(socket, seen)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum07::serve(listener, app).await });
    format!("ws://{addr}/socket")
}

#[tokio::test]
async fn our_codec_talks_to_the_original_library() {
    let seen = Arc::new(Seen::default());
    let url = original_server(seen.clone()).await;
    let mut c = Client::connect(&url).await;

    // Notify both ways.
    c.notify("ping", &b"hi"[..]).await;
    assert_eq!(c.event("pong").await, Bytes::from_static(b"hi"));
    c.notify("poke", Bytes::new()).await;
    assert_eq!(
        c.event("poked").await,
        Bytes::from_static(b"from the original")
    );

    // Call and response.
    assert_eq!(
        c.call("uppercase", &b"abc"[..]).await,
        Bytes::from_static(b"ABC")
    );

    // A call that finishes.
    assert_eq!(
        c.call("slow", Bytes::new()).await,
        Bytes::from_static(b"slow done")
    );

    // Reset: the original aborts the task and never answers.
    let id = c.request("slow", Bytes::new()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.started.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slow call never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.send(Frame::Reset { id }).await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(
        seen.stopped.load(Ordering::SeqCst),
        2,
        "reset task was dropped"
    );
    assert_eq!(
        seen.finished.load(Ordering::SeqCst),
        1,
        "reset task never finished"
    );
    // A later call is answered and the reset one never is.
    assert_eq!(
        c.call("uppercase", &b"z"[..]).await,
        Bytes::from_static(b"Z")
    );
    assert!(!c.pending_has_response(id));
}

#[test]
fn the_golden_frames_match_what_the_original_parses() {
    // The original's Request layout: opcode, u32 id, u8 name length, name, data.
    let ours = Frame::request(0x0102_0304, common::name("myip"), Bytes::from_static(b"x")).encode();
    assert_eq!(
        ours.as_ref(),
        &[2, 1, 2, 3, 4, 4, b'm', b'y', b'i', b'p', b'x']
    );
}
