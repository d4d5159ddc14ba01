//! Scrollback in the mounted app against the real server: older messages
//! arrive above what is read, in order and each once, without moving the
//! line the reader is on, and the page holds a bounded window of lines
//! however far back one scrolls. Its own test binary.
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{app::*, *};
use frontend::components::WINDOW;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The numbers of the messages in the page, which must be consecutive.
fn shown(host: &web_sys::HtmlElement) -> Vec<u32> {
    let numbers: Vec<u32> = texts(host, &id("message-text"))
        .iter()
        .map(|t| {
            t.trim_start_matches("old ")
                .parse()
                .expect("a numbered message")
        })
        .collect();
    for pair in numbers.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "in order, each once: {numbers:?}");
    }
    assert!(
        numbers.len() <= WINDOW,
        "{} lines in the page",
        numbers.len()
    );
    numbers
}

/// Where message `n` is, relative to the top of the list's view.
fn offset_of(host: &web_sys::HtmlElement, n: u32) -> i32 {
    let list: web_sys::HtmlElement = find(host, &id("messages"))
        .expect("list")
        .dyn_into()
        .expect("element");
    let row: web_sys::HtmlElement = texts(host, &id("message-text"))
        .iter()
        .position(|t| *t == format!("old {n:03}"))
        .and_then(|i| {
            host.query_selector_all(&id("message"))
                .ok()?
                .item(i as u32)?
                .dyn_into()
                .ok()
        })
        .expect("the message is in the page");
    row.offset_top() - list.scroll_top()
}

#[wasm_bindgen_test]
async fn older_messages_arrive_above_the_reader_who_stays_put() {
    // 300 messages: the room opens on the latest 50.
    let room = unique("older");
    let (writer, mut writer_events, _) = connected(&unique("older-writer")).await;
    writer.join(&room).await.expect("the writer joins");
    let all: Vec<String> = (1..=300).map(|i| format!("old {i:03}")).collect();
    let acks = say_all(&writer, &mut writer_events, &room, &all).await;
    let seqs: Vec<u64> = acks.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=300).collect::<Vec<u64>>(), "stored in order");

    let nick = unique("older-reader");
    let (host, _chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    join_with_form(&host, &room).await;
    until_texts(&host, &id("message-text"), &all[250..]).await;
    // The test page has no stylesheet: give the list the box the app's
    // gives it, so that it scrolls.
    find(&host, &id("messages"))
        .expect("list")
        .set_attribute(
            "style",
            "height: 400px; overflow-y: auto; position: relative",
        )
        .expect("style");
    // The reader scrolls up to message 251.
    let list: web_sys::HtmlElement = find(&host, &id("messages"))
        .expect("list")
        .dyn_into()
        .expect("element");
    let top_of_251 = offset_of(&host, 251) + list.scroll_top();
    list.set_scroll_top(top_of_251 - 10);
    assert!(find(&host, &id("load-older")).is_some(), "older ones exist");
    // The reader is on message 251 (the first shown); older ones load:
    // the scroll's own event (it comes with the next frames, as it does
    // for a person) may ask for them already, near the top; else the
    // button does. Either way, one load, and the reader stays put.
    let before = offset_of(&host, 251);
    frames(2).await;
    if find(&host, &id("load-older")).is_some() {
        click(&host, &id("load-older"));
    }
    until("older messages arrive", || {
        shown(&host).first() < Some(&251)
    })
    .await;
    // Wait for the window to settle, then: 251 has not moved, and no
    // "new messages" pill was raised by messages that are old.
    let mut settled = Vec::new();
    until("the window settles", || {
        let now = shown(&host);
        let same = now == settled;
        settled = now;
        same
    })
    .await;
    assert!(settled.contains(&251), "{settled:?}");
    // The app puts the reader back from the next animation frame.
    frames(2).await;
    assert_eq!(offset_of(&host, 251), before, "the reader's line stays put");
    assert!(
        find(&host, &id("new-messages")).is_none(),
        "no pill for old messages"
    );

    // Scrolling up goes all the way back, a bounded window at a time.
    until("message 1 is reached", || {
        list.set_scroll_top(0);
        let _ = list.dispatch_event(&web_sys::Event::new("scroll").expect("event"));
        shown(&host).first() == Some(&1)
    })
    .await;
    until_gone(&host, &id("load-older")).await;
    // And back down to the newest.
    until("the newest is reached", || {
        list.set_scroll_top(list.scroll_height());
        let _ = list.dispatch_event(&web_sys::Event::new("scroll").expect("event"));
        shown(&host).last() == Some(&300)
    })
    .await;
    writer.socket().close();
    host.remove();
}
