//! Components mounted into the DOM of a real browser, connected to the real
//! server: what they render for the state, and what typing does.
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use frontend::{
    components::ChatApp,
    net::sleep_ms,
    state::{Chat, NICK_KEY, model::RoomView},
};
use leptos::prelude::*;
use std::{cell::Cell, rc::Rc};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{Element, HtmlElement, HtmlTextAreaElement};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("document")
}

/// Mounts the app into a fresh element; returns the element, the state and
/// the handle that keeps it mounted.
fn mount(
    nick: Option<&str>,
) -> (
    HtmlElement,
    Chat,
    leptos::mount::UnmountHandle<impl Mountable>,
) {
    let storage = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .expect("localStorage");
    match nick {
        Some(n) => storage.set_item(NICK_KEY, n).expect("store nick"),
        None => storage.remove_item(NICK_KEY).expect("forget nick"),
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

fn find(host: &HtmlElement, selector: &str) -> Option<Element> {
    host.query_selector(selector).ok().flatten()
}

/// The text of every element matching `selector`, joined.
fn text_of(host: &HtmlElement, selector: &str) -> String {
    let Ok(all) = host.query_selector_all(selector) else {
        return String::new();
    };
    (0..all.length())
        .filter_map(|i| all.item(i).and_then(|n| n.text_content()))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn until_text(host: &HtmlElement, selector: &str, wanted: &str) {
    for _ in 0..250 {
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

#[wasm_bindgen_test]
async fn first_visit_asks_for_a_nickname_and_the_banner_goes_online() {
    let (host, _chat, _handle) = mount(None);
    assert!(
        find(&host, "[data-testid=nick-dialog]").is_some(),
        "asks for a nick"
    );
    until_text(&host, "[data-testid=banner-text]", "Online").await;
    host.remove();
}

#[wasm_bindgen_test]
async fn enter_in_the_composer_sends_and_the_message_shows_as_sent() {
    let (host, chat, _handle) = mount(Some("comp-sender"));
    until_text(&host, "[data-testid=nick-button]", "comp-sender").await;
    assert!(
        find(&host, "[data-testid=nick-dialog]").is_none(),
        "a remembered nick is not asked again (asking {:?}, stored {:?})",
        chat.asking_nick.try_get_untracked(),
        frontend::state::load(true, NICK_KEY)
    );
    let area: HtmlTextAreaElement = find(&host, "[data-testid=composer]")
        .expect("composer")
        .dyn_into()
        .expect("textarea");
    let text = format!("sent from a component test {}", js_sys::Math::random());
    area.set_value(&text);
    let init = web_sys::EventInit::new();
    init.set_bubbles(true);
    let input = web_sys::Event::new_with_event_init_dict("input", &init).expect("input event");
    area.dispatch_event(&input).expect("dispatch input");
    let key = web_sys::KeyboardEventInit::new();
    key.set_key("Enter");
    key.set_bubbles(true);
    key.set_cancelable(true);
    let enter = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &key)
        .expect("keydown");
    area.dispatch_event(&enter).expect("dispatch enter");
    let mine = "[data-testid=message][data-delivery=sent]";
    until_text(&host, mine, &text).await;
    eventually(2_000, "the composer is cleared", || area.value().is_empty()).await;
    host.remove();
}

#[wasm_bindgen_test]
async fn markup_in_messages_is_text_and_unread_rooms_get_a_badge() {
    let (host, chat, _handle) = mount(Some("comp-viewer"));
    until_text(&host, "[data-testid=banner-text]", "Online").await;
    chat.model.update(|m| {
        let mut room = RoomView::default();
        room.name = "local-only".into();
        room.notice("<b>not bold</b><img src=x onerror=alert(1)>", 0);
        m.rooms.push(room);
        let mut other = RoomView::default();
        other.name = "elsewhere".into();
        other.unread = 3;
        m.rooms.push(other);
        m.show("local-only");
    });
    until_text(&host, "[data-testid=room-title]", "#local-only").await;
    let messages = find(&host, "[data-testid=messages]").expect("list");
    assert_eq!(
        text_of(&host, "[data-testid=notice]"),
        "<b>not bold</b><img src=x onerror=alert(1)>"
    );
    assert!(
        messages.query_selector("b").ok().flatten().is_none(),
        "no <b> element"
    );
    assert!(
        messages.query_selector("img").ok().flatten().is_none(),
        "no <img> element"
    );
    let badge = find(&host, "[data-testid=room-elsewhere] .badge").expect("badge");
    assert_eq!(badge.text_content().as_deref(), Some("3"));
    assert_eq!(
        badge.get_attribute("aria-label").as_deref(),
        Some("3 unread")
    );
    host.remove();
}
