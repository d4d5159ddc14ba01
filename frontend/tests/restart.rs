//! Reconnect after the server restarts, with a message typed meanwhile
//! queued while the connection is down and stored exactly once. Its own
//! test binary: it restarts the server.
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use frontend::net::{chat::ChatEvent, socket::Status};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const BEFORE: &str = "said before the restart";
const QUEUED: &str = "queued across a restart";
const MARKER: &str = "sent after the queued one";

#[wasm_bindgen_test]
async fn reconnects_after_the_server_restarts_and_sends_the_queue_once() {
    let room = unique("wasm-restart");
    let (client, mut events, _) = connected(&unique("wasm-restart")).await;
    client.join(&room).await.expect("join");
    // A room with history: the server finds it again from the client's
    // cursor even when the session's save did not reach the disk before the
    // server stopped (a room without history relies on that save alone,
    // which is sometimes lost: reported separately).
    let before = say_all(&client, &mut events, &room, &[BEFORE.to_owned()]).await[0];

    // The restart runs while the test watches the client: the message is
    // typed the moment the client reports the connection lost.
    let typed = async {
        next_event(&mut events, 10_000, "lost connection", |e| {
            matches!(e, ChatEvent::Status(Status::Reconnecting { .. }))
        })
        .await;
        // Only microtasks ran since the client said so; reconnecting needs
        // a timer: the socket is still down, so the message can only wait.
        let status = client.socket().status();
        assert!(
            matches!(status, Status::Reconnecting { .. }),
            "still down when typing: {status:?}"
        );
        let cid = client.say(&room, QUEUED, None);
        assert_eq!(client.queued(), 1, "queued, not sent");
        assert_eq!(client.socket().status(), status, "and still down");
        cid
    };
    let ((), cid) = futures_util::future::join(restart_server(), typed).await;

    let welcome = welcomed(&mut events).await;
    assert!(
        welcome.rooms.iter().any(|r| r.room == room),
        "the room is joined again after the restart"
    );
    // Until a message sent after the queued one's acknowledgement comes
    // back, count every delivery of the queued one.
    let mut deliveries = Vec::new();
    let mut stored = None;
    loop {
        match next_event(&mut events, 15_000, "ack, message or marker", |_| true).await {
            ChatEvent::Msg(m) if m.room == room && m.text == QUEUED => deliveries.push(m.seq),
            ChatEvent::Msg(m) if m.room == room && m.text == MARKER => break,
            ChatEvent::Said { cid: c, result } if c == cid => {
                let said = result.expect("stored after the restart");
                stored = Some(said.seq);
                client.say(&room, MARKER, None);
            }
            _ => {}
        }
    }
    let seq = stored.expect("the queued message was acknowledged");
    assert_eq!(deliveries, [seq], "delivered once, with its stored seq");

    // The room's history on the server: the queued message once, then the
    // marker.
    let seen = room_on_server(&room).await;
    let history: Vec<(u64, &str)> = seen
        .history
        .iter()
        .map(|m| (m.seq, m.text.as_str()))
        .collect();
    assert_eq!(
        history,
        [(before.seq, BEFORE), (seq, QUEUED), (seq + 1, MARKER)]
    );
    until_some(5_000, "the marker acknowledged", || {
        (client.queued() == 0).then_some(())
    })
    .await;
    client.socket().close();
}
