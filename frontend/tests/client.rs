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
use shared::{Frame, Name, event};
use wasm_bindgen::{JsCast, JsValue};
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

/// Records every binary frame this page's WebSockets send, and receive
/// from their first send on, so a test sees what went over the wire.
/// web-sys calls `send` through the prototype, so the spy sees the client's
/// own frames.
const SPY: &str = r#"
if (!window.__wireSpy) {
  window.__wireSpy = [];
  let sockets = 0;
  const copy = (data) => data instanceof ArrayBuffer
    ? new Uint8Array(data.slice(0))
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
      : null;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (this.__spyId === undefined) {
      this.__spyId = ++sockets;
      const sock = this.__spyId;
      this.addEventListener('message', (e) => {
        const bytes = copy(e.data);
        if (bytes) window.__wireSpy.push({ sock, out: false, bytes });
      });
    }
    const bytes = copy(data);
    if (bytes) window.__wireSpy.push({ sock: this.__spyId, out: true, bytes });
    return send.call(this, data);
  };
}
"#;

/// One frame the spy saw: which socket, whether it was sent, the frame.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    sock: u32,
    out: bool,
    frame: Frame,
}

/// A Request as decoded from the wire. (`Name`'s equality tells a decoded
/// name from a `from_static` one with the same text, so expected frames are
/// built the way the spy's are.)
fn request(id: u32, name: &str, payload: &'static [u8]) -> Frame {
    Frame::Request {
        id,
        name: Name::new(name).expect("a name"),
        payload: Bytes::from_static(payload),
    }
}

fn spy_on_sockets() {
    js_sys::Function::new_no_args(SPY)
        .call0(&JsValue::NULL)
        .expect("the spy installs");
}

fn wire() -> Vec<Seen> {
    let window = web_sys::window().expect("window");
    let log: js_sys::Array = js_sys::Reflect::get(&window, &"__wireSpy".into())
        .expect("spy log")
        .dyn_into()
        .expect("an array");
    log.iter()
        .map(|entry| {
            let get = |key: &str| js_sys::Reflect::get(&entry, &key.into()).expect(key);
            let bytes = js_sys::Uint8Array::new(&get("bytes")).to_vec();
            Seen {
                sock: get("sock").as_f64().expect("sock") as u32,
                out: get("out").as_bool().expect("out"),
                frame: Frame::decode(&Bytes::from(bytes)).expect("a frame"),
            }
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_timed_out_call_sends_a_reset_and_the_server_never_answers_it() {
    spy_on_sockets();
    let socket = open_socket().await;
    // Given up after 500 ms: the Reset has 2.5 s to reach the server before
    // the task would end. On a machine stalled longer than that, `done!`
    // would arrive and the test fail; it cannot pass by accident.
    let long = socket.call(event::LONG_RUNNING_TASK, Bytes::new(), 500);
    // The server handles a connection's frames in order: once it answers
    // this call, sent after the long one, it has started the long task
    // (or refused it, which would be an answer to the long call).
    let first = socket.call(event::UPPERCASE, Bytes::from_static(b"first"), 10_000);
    let (long, first) = futures_util::future::join(long, first).await;
    assert_eq!(first, Ok(Bytes::from_static(b"FIRST")));
    assert_eq!(long, Err(CallError::TimedOut));
    let answered_at = frontend::net::now_ms();

    // What the client sent: the two calls, then a Reset for the long one
    // (queued as the call gave up; its writer task puts it on the socket).
    let (sock, id) = wire()
        .iter()
        .find_map(|s| match &s.frame {
            Frame::Request { id, name, .. } if s.out && *name == event::LONG_RUNNING_TASK => {
                Some((s.sock, *id))
            }
            _ => None,
        })
        .expect("the long call went out");
    let sent: Vec<Frame> = until_some(5_000, "the Reset on the wire", || {
        let sent: Vec<Frame> = wire()
            .into_iter()
            .filter(|s| s.sock == sock && s.out)
            .map(|s| s.frame)
            .collect();
        sent.iter()
            .any(|f| matches!(f, Frame::Reset { .. }))
            .then_some(sent)
    })
    .await;
    let Some(Frame::Request { id: first_id, .. }) = sent.get(1) else {
        panic!("sent {sent:?}");
    };
    assert_eq!(
        sent,
        [
            request(id, event::LONG_RUNNING_TASK, b""),
            request(*first_id, event::UPPERCASE, b"first"),
            Frame::Reset { id },
        ]
    );

    // The Reset aborted the task: the server's count drops to 0. The count
    // drops when the task's future is dropped, which for a task that ran
    // its 3 s is right before its `done!` is queued, ahead of any later
    // answer.
    long_tasks_become(0, 10_000).await;
    // Past the moment the task would have answered had it run (it started
    // before the server answered "first"; this waits at least that long, it
    // bounds nothing), the connection still answers...
    while frontend::net::now_ms() < answered_at + 3_500.0 {
        frontend::net::sleep_ms(100).await;
    }
    let later = socket
        .call(event::UPPERCASE, Bytes::from_static(b"later"), 10_000)
        .await;
    assert_eq!(
        later,
        Ok(Bytes::from_static(b"LATER")),
        "the socket is alive"
    );
    // ...and it never answered the long call. (The spy's listener runs
    // after the client's, so it may log the last answer a moment later.)
    let answers: Vec<Frame> = until_some(5_000, "the spy logs the last answer", || {
        let answers: Vec<Frame> = wire()
            .into_iter()
            .filter(|s| s.sock == sock && !s.out)
            .map(|s| s.frame)
            .filter(|f| matches!(f, Frame::Response { .. }))
            .collect();
        answers
            .iter()
            .any(|f| matches!(f, Frame::Response { payload, .. } if payload == "LATER"))
            .then_some(answers)
    })
    .await;
    let Some(Frame::Response { id: later_id, .. }) = answers.last() else {
        panic!("answers {answers:?}");
    };
    assert_eq!(
        answers,
        [
            Frame::response(*first_id, Bytes::from_static(b"FIRST")),
            Frame::response(*later_id, Bytes::from_static(b"LATER")),
        ],
        "no answer to request {id}"
    );
    socket.close();
}

#[wasm_bindgen_test]
async fn missed_messages_are_recovered_after_a_disconnect() {
    let room = unique("wasm-recovery");
    let (alice, mut alice_events) =
        ChatClient::connect(socket_url(), Some(unique("wasm-alice")), None);
    let (bob, mut bob_events) = ChatClient::connect(socket_url(), Some(unique("wasm-bob")), None);
    welcomed(&mut alice_events).await;
    welcomed(&mut bob_events).await;
    alice.join(&room).await.expect("alice joins");
    bob.join(&room).await.expect("bob joins");

    bob.socket().close();
    next_event(&mut bob_events, 5_000, "bob offline", |e| {
        matches!(e, ChatEvent::Status(Status::Offline { .. }))
    })
    .await;
    let mut cids = Vec::new();
    for i in 1..=3 {
        cids.push(alice.say(&room, &format!("missed {i}"), None));
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
    let state = welcome
        .rooms
        .iter()
        .find(|r| r.room == room)
        .expect("room is back");
    assert!(state.recovered, "exact recovery");
    let texts: Vec<&str> = state.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["missed 1", "missed 2", "missed 3"]);
    alice.socket().close();
    bob.socket().close();
}
