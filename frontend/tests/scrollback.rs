//! "Load older" in the mounted app against the real server: the messages
//! before the first page appear above it, in order, each once. Its own test
//! binary: the runner gives each binary 20 s.
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{app::*, *};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn load_older_puts_earlier_messages_above_in_order_once() {
    // 120 messages: the room opens on the latest 50, and two pages of 50
    // go back to the first.
    let room = unique("older");
    let (writer, mut writer_events, _) = connected(&unique("older-writer")).await;
    writer.join(&room).await.expect("the writer joins");
    let all: Vec<String> = (1..=120).map(|i| format!("old {i:03}")).collect();
    let acks = say_all(&writer, &mut writer_events, &room, &all).await;
    let seqs: Vec<u64> = acks.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=120).collect::<Vec<u64>>(), "stored in order");

    let nick = unique("older-reader");
    let (host, _chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    join_with_form(&host, &room).await;
    let shown = id("message-text");
    until_texts(&host, &shown, &all[70..]).await;
    assert!(find(&host, &id("load-older")).is_some(), "older ones exist");

    click(&host, &id("load-older"));
    until_texts(&host, &shown, &all[20..]).await;
    assert!(find(&host, &id("load-older")).is_some(), "still older ones");

    click(&host, &id("load-older"));
    until_texts(&host, &shown, &all).await;
    until_gone(&host, &id("load-older")).await;
    // Every line is a stored message of the writer's.
    assert_eq!(
        texts(
            &host,
            "[data-testid=message][data-delivery=sent] [data-testid=message-text]"
        ),
        all
    );
    writer.socket().close();
    host.remove();
}
