//! Helpers for the browser tests. The test command (scripts/test.sh) starts
//! a real server through scripts/harness.mjs and passes its addresses at
//! compile time.
#![allow(dead_code, unreachable_pub)]

pub mod app;

use frontend::net::{
    chat::{ChatClient, ChatEvent},
    sleep_ms,
    socket::Status,
};
use futures_channel::mpsc::UnboundedReceiver;
use futures_util::{
    StreamExt,
    future::{Either, select},
};
use shared::chat::{Msg, Presence, PresenceKind, Said};
use std::{collections::HashMap, future::Future, pin::pin};

/// The chat server's socket address.
pub fn socket_url() -> &'static str {
    match option_env!("CHAT_TEST_SOCKET") {
        Some(url) => url,
        None => panic!("CHAT_TEST_SOCKET is set by scripts/test.sh when it builds these tests"),
    }
}

/// The harness's control address.
pub fn control_url() -> &'static str {
    match option_env!("CHAT_TEST_CONTROL") {
        Some(url) => url,
        None => panic!("CHAT_TEST_CONTROL is set by scripts/test.sh when it builds these tests"),
    }
}

/// The server's `/healthz` as JSON.
pub async fn health() -> serde_json::Value {
    let url = socket_url()
        .replace("ws://", "http://")
        .replace("/socket", "/healthz");
    gloo_net::http::Request::get(&url)
        .send()
        .await
        .expect("healthz answers")
        .json()
        .await
        .expect("healthz is json")
}

/// Asks the harness to restart the server (SIGTERM, then start again).
pub async fn restart_server() {
    let url = format!("{}/restart", control_url());
    let res = gloo_net::http::Request::post(&url)
        .send()
        .await
        .expect("control answers");
    assert_eq!(res.status(), 200);
}

/// `fut`, or `None` after `ms`.
pub async fn within<T>(ms: u32, fut: impl Future<Output = T>) -> Option<T> {
    match select(pin!(fut), pin!(sleep_ms(ms))).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}

/// The next event that `pick` accepts, within `ms`; panics otherwise,
/// listing what arrived instead.
pub async fn next_event(
    events: &mut UnboundedReceiver<ChatEvent>,
    ms: u32,
    what: &str,
    mut pick: impl FnMut(&ChatEvent) -> bool,
) -> ChatEvent {
    let mut skipped = Vec::new();
    let found = within(ms, async {
        loop {
            let event = events.next().await.expect("event stream open");
            if pick(&event) {
                return event;
            }
            skipped.push(format!("{event:?}"));
        }
    })
    .await;
    found.unwrap_or_else(|| panic!("no {what} within {ms} ms; got instead: {skipped:#?}"))
}

/// Waits until the client's status is Online.
pub async fn online(events: &mut UnboundedReceiver<ChatEvent>) {
    next_event(events, 10_000, "online status", |e| {
        matches!(e, ChatEvent::Status(Status::Online))
    })
    .await;
}

/// Waits for the `Welcome` of a `hello`.
pub async fn welcomed(events: &mut UnboundedReceiver<ChatEvent>) -> shared::chat::Welcome {
    match next_event(events, 15_000, "welcome", |e| {
        matches!(e, ChatEvent::Welcome(_))
    })
    .await
    {
        ChatEvent::Welcome(w) => w,
        _ => unreachable!("picked a welcome"),
    }
}

/// Polls `check` every 20 ms until it holds, for at most `ms`.
pub async fn eventually(ms: u32, what: &str, mut check: impl FnMut() -> bool) {
    let tries = ms / 20;
    for _ in 0..tries {
        if check() {
            return;
        }
        sleep_ms(20).await;
    }
    assert!(check(), "{what}: not true within {ms} ms");
}

/// `prefix` and a random suffix: a name nobody used before, so a test can
/// run again against the same server (history and sessions persist).
pub fn unique(prefix: &str) -> String {
    let n = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{prefix}-{n:08x}")
}

/// A chat client connected as `nick` (or its `-N` variant), after `hello`.
pub async fn connected(
    nick: &str,
) -> (
    ChatClient,
    UnboundedReceiver<ChatEvent>,
    shared::chat::Welcome,
) {
    let (client, mut events) = ChatClient::connect(socket_url(), Some(nick.to_owned()), None);
    let welcome = welcomed(&mut events).await;
    (client, events, welcome)
}

/// Says every text in `room`, at most 32 at a time (the server lets a
/// connection wait for 64 answers), and waits for each acknowledgement.
pub async fn say_all(
    client: &ChatClient,
    events: &mut UnboundedReceiver<ChatEvent>,
    room: &str,
    texts: &[String],
) -> Vec<Said> {
    let mut acks = Vec::new();
    for batch in texts.chunks(32) {
        let cids: Vec<String> = batch.iter().map(|t| client.say(room, t, None)).collect();
        let mut answers: HashMap<String, Said> = HashMap::new();
        while answers.len() < cids.len() {
            let said = next_event(
                events,
                15_000,
                "acknowledgement",
                |e| matches!(e, ChatEvent::Said { cid, .. } if cids.contains(cid)),
            )
            .await;
            if let ChatEvent::Said { cid, result } = said {
                let said = result.unwrap_or_else(|e| panic!("say {cid} refused: {e:?}"));
                answers.insert(cid, said);
            }
        }
        acks.extend(cids.iter().map(|c| answers[c]));
    }
    acks
}

/// What the server says about `room`, as a client that was never in it
/// sees it: the members once it joined (its own nick included, sorted) and
/// the room's whole history (up to 200 messages, oldest first).
pub struct RoomOnServer {
    /// The probe's own nick.
    pub probe: String,
    /// Every member, sorted.
    pub members: Vec<String>,
    /// Every message, oldest first.
    pub history: Vec<Msg>,
}

/// Joins `room` with a fresh client and reads its members and history.
pub async fn room_on_server(room: &str) -> RoomOnServer {
    let (probe, _events, welcome) = connected(&unique("probe")).await;
    let state = probe.join(room).await.expect("the probe joins");
    let history = probe
        .history(room, u64::MAX, 200)
        .await
        .expect("history answers");
    probe.socket().close();
    let mut members = state.members;
    members.sort();
    RoomOnServer {
        probe: welcome.nick,
        members,
        history,
    }
}

/// The next presence event of `what` for `nick` in `room`.
pub async fn presence(
    events: &mut UnboundedReceiver<ChatEvent>,
    room: &str,
    nick: &str,
    what: PresenceKind,
) -> Presence {
    let wanted = format!("{what:?} of {nick} in {room}");
    match next_event(events, 10_000, &wanted, |e| {
        matches!(e, ChatEvent::Presence(p) if p.room == room && p.nick == nick && p.what == what)
    })
    .await
    {
        ChatEvent::Presence(p) => p,
        _ => unreachable!("picked a presence"),
    }
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `ms`.
pub async fn until_some<T>(ms: u32, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let tries = ms / 20;
    for _ in 0..tries {
        if let Some(value) = check() {
            return value;
        }
        sleep_ms(20).await;
    }
    check().unwrap_or_else(|| panic!("{what}: not true within {ms} ms"))
}

/// Polls `/healthz` until its `long_tasks` is `n`, for at most `ms`.
pub async fn long_tasks_become(n: u64, ms: u32) {
    let start = frontend::net::now_ms();
    loop {
        let seen = health().await["long_tasks"].as_u64();
        if seen == Some(n) {
            return;
        }
        assert!(
            frontend::net::now_ms() - start < f64::from(ms),
            "long_tasks is {seen:?}, not {n}, after {ms} ms"
        );
        sleep_ms(25).await;
    }
}
