//! Helpers for the browser tests. The test command (scripts/test.sh) starts
//! a real server through scripts/harness.mjs and passes its addresses at
//! compile time.
#![allow(dead_code, unreachable_pub)]

use frontend::net::{chat::ChatEvent, sleep_ms, socket::Status};
use futures_channel::mpsc::UnboundedReceiver;
use futures_util::{
    StreamExt,
    future::{Either, select},
};
use std::{future::Future, pin::pin};

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
