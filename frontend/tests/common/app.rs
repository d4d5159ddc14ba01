//! The app mounted into the test page, and what a user does with it:
//! find elements by `data-testid`, read their text, type, click.

use super::socket_url;
use frontend::{
    components::ChatApp,
    net::sleep_ms,
    state::{Chat, NICK_KEY},
};
use leptos::prelude::*;
use std::{cell::Cell, rc::Rc};
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement, HtmlInputElement, HtmlTextAreaElement};

/// How long the page may take to show what a test waits for.
pub const UI_MS: u32 = 10_000;

pub fn document() -> web_sys::Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("document")
}

/// Mounts the app into a fresh element, as a first visit (`nick: None`) or
/// a return visit with a remembered nickname, always with a new session. Returns the element, the state
/// and the handle that keeps it mounted.
pub fn mount(
    nick: Option<&str>,
) -> (
    HtmlElement,
    Chat,
    leptos::mount::UnmountHandle<impl Mountable>,
) {
    let window = web_sys::window().expect("window");
    let storage = window.local_storage().ok().flatten().expect("localStorage");
    // A fresh start: no session, queued messages, read marks or drafts of
    // an earlier test (tests share the page's storage).
    let keys: Vec<String> = (0..storage.length().unwrap_or(0))
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter(|k| k.starts_with("chat."))
        .collect();
    for key in keys {
        storage.remove_item(&key).expect("forget");
    }
    if let Some(n) = nick {
        storage.set_item(NICK_KEY, n).expect("store nick");
    }
    let host: HtmlElement = document()
        .create_element("div")
        .expect("div")
        .dyn_into()
        .expect("html element");
    document()
        .body()
        .expect("body")
        .append_child(&host)
        .expect("append");
    let slot = Rc::new(Cell::new(None));
    let out = slot.clone();
    let handle = leptos::mount::mount_to(host.clone(), move || {
        let chat = Chat::start(socket_url());
        out.set(Some(chat));
        view! { <ChatApp chat=chat /> }
    });
    (host, slot.get().expect("chat started"), handle)
}

pub fn find(host: &HtmlElement, selector: &str) -> Option<Element> {
    host.query_selector(selector).ok().flatten()
}

/// The selector of an element by its `data-testid`.
pub fn id(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// The text of every element matching `selector`, in document order.
pub fn texts(host: &HtmlElement, selector: &str) -> Vec<String> {
    let Ok(all) = host.query_selector_all(selector) else {
        return Vec::new();
    };
    (0..all.length())
        .filter_map(|i| all.item(i).and_then(|n| n.text_content()))
        .collect()
}

/// The text of every element matching `selector`, joined.
pub fn text_of(host: &HtmlElement, selector: &str) -> String {
    texts(host, selector).join("\n")
}

/// Waits until `check` holds, for at most [`UI_MS`].
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..UI_MS / 20 {
        if check() {
            return;
        }
        sleep_ms(20).await;
    }
    assert!(check(), "{what}: not true within {UI_MS} ms");
}

/// Waits for the page to draw `n` frames: what the app does from an
/// animation frame after a change (scroll restores) has run by then.
pub async fn frames(n: u32) {
    for _ in 0..n {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let _ = web_sys::window()
                .expect("window")
                .request_animation_frame(&resolve);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

/// Waits until the text of `selector` contains `wanted`.
pub async fn until_text(host: &HtmlElement, selector: &str, wanted: &str) {
    for _ in 0..UI_MS / 20 {
        if text_of(host, selector).contains(wanted) {
            return;
        }
        sleep_ms(20).await;
    }
    panic!(
        "{selector} never showed {wanted:?}; it shows {:?}",
        text_of(host, selector)
    );
}

/// Waits until the texts of `selector` are exactly `wanted`, in order.
pub async fn until_texts(host: &HtmlElement, selector: &str, wanted: &[String]) {
    for _ in 0..UI_MS / 20 {
        if texts(host, selector) == wanted {
            return;
        }
        sleep_ms(20).await;
    }
    assert_eq!(
        texts(host, selector),
        wanted,
        "{selector} within {UI_MS} ms"
    );
}

/// Waits until some element matching `selector` has exactly the text `wanted`.
pub async fn until_one_is(host: &HtmlElement, selector: &str, wanted: &str) {
    for _ in 0..UI_MS / 20 {
        if texts(host, selector).iter().any(|t| t == wanted) {
            return;
        }
        sleep_ms(20).await;
    }
    panic!(
        "no {selector} is {wanted:?}; they are {:#?}",
        texts(host, selector)
    );
}

/// Waits until nothing matches `selector`.
pub async fn until_gone(host: &HtmlElement, selector: &str) {
    until(&format!("{selector} is gone"), || {
        find(host, selector).is_none()
    })
    .await;
}

/// Clicks the element matching `selector` (it must be there).
pub fn click(host: &HtmlElement, selector: &str) {
    let el: HtmlElement = find(host, selector)
        .unwrap_or_else(|| panic!("no {selector} to click"))
        .dyn_into()
        .expect("an html element");
    el.click();
}

fn input_event(target: &web_sys::EventTarget) {
    let init = web_sys::EventInit::new();
    init.set_bubbles(true);
    let input = web_sys::Event::new_with_event_init_dict("input", &init).expect("input event");
    target.dispatch_event(&input).expect("dispatch input");
}

/// Types `text` into the input matching `selector`.
pub fn fill(host: &HtmlElement, selector: &str, text: &str) {
    let input: HtmlInputElement = find(host, selector)
        .unwrap_or_else(|| panic!("no {selector}"))
        .dyn_into()
        .expect("an input");
    input.set_value(text);
    input_event(&input);
}

/// Types `text` in the composer and presses Enter, as a user does.
pub fn send(host: &HtmlElement, text: &str) {
    let area: HtmlTextAreaElement = find(host, &id("composer"))
        .expect("composer")
        .dyn_into()
        .expect("textarea");
    area.set_value(text);
    input_event(&area);
    let key = web_sys::KeyboardEventInit::new();
    key.set_key("Enter");
    key.set_bubbles(true);
    key.set_cancelable(true);
    let enter = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &key)
        .expect("keydown");
    area.dispatch_event(&enter).expect("dispatch enter");
}

/// Joins (or creates) `room` with the sidebar's form and waits until it is
/// on screen.
pub async fn join_with_form(host: &HtmlElement, room: &str) {
    fill(host, &id("join-input"), room);
    click(host, &id("join-button"));
    until_one_is(host, &id("room-title"), &format!("#{room}")).await;
}

/// Waits until the app is online with nickname `nick` (exactly).
pub async fn online_as(host: &HtmlElement, nick: &str) {
    until_one_is(host, &id("banner-text"), "Online").await;
    until_one_is(host, &format!("{} .nick", id("nick-button")), nick).await;
}
