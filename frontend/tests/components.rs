//! Components mounted into the DOM of a real browser, connected to the real
//! server: what they render, and what a user's typing and clicks do there
//! (checked from other clients of the same server).
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{app::*, *};
use frontend::{net::socket::Status, state::NICK_KEY};
use leptos::prelude::GetUntracked;
use shared::chat::PresenceKind;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::HtmlTextAreaElement;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn first_visit_asks_for_a_nickname_and_the_banner_goes_online() {
    let (host, _chat, _handle) = mount(None);
    let open = format!("{}[open]", id("nick-dialog"));
    until("asks for a nick", || find(&host, &open).is_some()).await;
    // A modal, with the cursor in its input (not in the composer behind).
    let active = document()
        .active_element()
        .and_then(|e| e.get_attribute("data-testid"));
    assert_eq!(active.as_deref(), Some("nick-input"));
    until_one_is(&host, &id("banner-text"), "Online").await;
    host.remove();
}

#[wasm_bindgen_test]
async fn enter_in_the_composer_sends_and_the_message_shows_as_sent() {
    let nick = unique("comp-sender");
    let (host, chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    assert!(
        find(&host, &format!("{}[open]", id("nick-dialog"))).is_none(),
        "a remembered nick is not asked again (asking {:?}, stored {:?})",
        chat.asking_nick.try_get_untracked(),
        frontend::state::load(true, NICK_KEY)
    );
    let room = unique("comp-send");
    join_with_form(&host, &room).await;
    let text = format!("sent from a component test {}", js_sys::Math::random());
    send(&host, &text);
    let mine = "[data-testid=message][data-delivery=sent] [data-testid=message-text]";
    until_texts(&host, mine, std::slice::from_ref(&text)).await;
    let area: HtmlTextAreaElement = find(&host, &id("composer"))
        .expect("composer")
        .dyn_into()
        .expect("textarea");
    until("the composer is cleared", || area.value().is_empty()).await;
    // Stored once, by this nick.
    let seen = room_on_server(&room).await;
    let stored: Vec<(&str, &str)> = seen
        .history
        .iter()
        .map(|m| (m.from.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(stored, [(nick.as_str(), text.as_str())]);
    host.remove();
}

#[wasm_bindgen_test]
async fn messages_in_another_room_give_it_an_unread_badge_and_markup_stays_text() {
    let nick = unique("comp-viewer");
    let (host, _chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    let away = unique("comp-away");
    let here = unique("comp-here");
    join_with_form(&host, &away).await;
    join_with_form(&host, &here).await;

    // Another person posts three messages in the room not on screen.
    let (other, mut other_events, _) = connected(&unique("comp-poster")).await;
    other.join(&away).await.expect("the poster joins");
    let sent: Vec<String> = vec![
        "<b>not bold</b><img src=x onerror=alert(1)>".into(),
        "second".into(),
        "third".into(),
    ];
    say_all(&other, &mut other_events, &away, &sent).await;

    let badge = format!("{} {}", id(&format!("room-{away}")), id("unread"));
    until_one_is(&host, &badge, "3").await;
    // Read as one name: "#room, N members, 3 unread" (visually hidden
    // words between the visible ones), not "#room 2 3".
    let name = text_of(&host, &format!("{} .sr-only", id(&format!("room-{away}"))));
    assert!(
        name.starts_with(&format!("#{away}, ")) && name.ends_with(" members, 3 unread"),
        "{name}"
    );
    assert_eq!(
        texts(
            &host,
            &format!("{} {}", id(&format!("room-{here}")), id("unread"))
        ),
        Vec::<String>::new(),
        "the room on screen has no badge"
    );
    assert_eq!(
        texts(&host, &id("message-text")),
        Vec::<String>::new(),
        "nothing shown in the room on screen"
    );

    // Opening the room shows the three messages, as text, and clears the badge.
    click(&host, &id(&format!("room-{away}")));
    until_one_is(&host, &id("room-title"), &format!("#{away}")).await;
    until_texts(&host, &id("message-text"), &sent).await;
    until_gone(&host, &badge).await;
    let messages = find(&host, &id("messages")).expect("list");
    assert!(
        messages.query_selector("b").ok().flatten().is_none(),
        "no <b> element"
    );
    assert!(
        messages.query_selector("img").ok().flatten().is_none(),
        "no <img> element"
    );
    other.socket().close();
    host.remove();
}

#[wasm_bindgen_test]
async fn the_sidebar_leave_button_leaves_the_room_on_the_server() {
    let nick = unique("comp-leaver");
    let (host, _chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    let room = unique("comp-left");
    let (watcher, mut watcher_events, welcome) = connected(&unique("comp-watcher")).await;
    watcher.join(&room).await.expect("the watcher joins");
    join_with_form(&host, &room).await;
    presence(&mut watcher_events, &room, &nick, PresenceKind::Join).await;
    assert!(
        find(&host, &id("leave-lobby")).is_none(),
        "the lobby cannot be left"
    );

    click(&host, &id(&format!("leave-{room}")));
    until_gone(&host, &id(&format!("room-{room}"))).await;
    assert_eq!(texts(&host, &id("room-title")), ["#lobby"]);
    presence(&mut watcher_events, &room, &nick, PresenceKind::Leave).await;
    let seen = room_on_server(&room).await;
    let mut expected = vec![welcome.nick.clone(), seen.probe.clone()];
    expected.sort();
    assert_eq!(seen.members, expected, "the server no longer lists {nick}");
    watcher.socket().close();
    host.remove();
}

#[wasm_bindgen_test]
async fn the_banner_says_offline_and_retry_now_reconnects() {
    let nick = unique("comp-banner");
    let (host, chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    assert!(find(&host, &id("retry-now")).is_none(), "nothing to retry");
    let session = chat.client().session().expect("a session");

    // The same session opened elsewhere closes this connection with 1008:
    // the app must not come back on its own, and says why.
    let (thief, mut thief_events) =
        frontend::net::chat::ChatClient::connect(socket_url(), None, Some(session.clone()));
    welcomed(&mut thief_events).await;
    until_one_is(
        &host,
        &id("banner-text"),
        "Offline: session resumed on another connection",
    )
    .await;
    assert_eq!(
        chat.client().socket().status(),
        Status::Offline {
            reason: "session resumed on another connection".into()
        }
    );
    assert!(find(&host, &id("retry-now")).is_some(), "offers to retry");
    thief.socket().close();

    // "Retry now" connects again with the same session and nickname.
    click(&host, &id("retry-now"));
    online_as(&host, &nick).await;
    assert!(find(&host, &id("retry-now")).is_none(), "nothing to retry");
    assert_eq!(chat.client().session().as_deref(), Some(session.as_str()));
    host.remove();
}

#[wasm_bindgen_test]
async fn edits_and_deletions_change_rows_in_place_and_are_never_unread() {
    let nick = unique("comp-reader");
    let (host, _chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    let room = unique("comp-edits");
    join_with_form(&host, &room).await;
    let (other, mut other_events, _) = connected(&unique("comp-author")).await;
    other.join(&room).await.expect("the author joins");
    let said = say_all(&other, &mut other_events, &room, &["first draft".into()]).await;
    let seq = said[0].seq;
    until_texts(&host, &id("message-text"), &["first draft".to_owned()]).await;
    assert!(
        find(&host, &id("edit-message")).is_none() && find(&host, &id("delete-message")).is_none(),
        "not this reader's to change (only to answer)"
    );

    // Live, in the room on screen: new text, marked; no row of its own.
    let cid = other.new_cid();
    other
        .edit(&room, seq, "final words", &cid)
        .await
        .expect("edited");
    until_texts(&host, &id("message-text"), &["final words".to_owned()]).await;
    until_texts(&host, &id("edited"), &["(edited)".to_owned()]).await;
    assert_eq!(texts(&host, &id("message")).len(), 1);

    // In a room not on screen: no unread for a deletion (the message
    // after it is the one counted).
    click(&host, &id("room-lobby"));
    until_one_is(&host, &id("room-title"), "#lobby").await;
    let cid = other.new_cid();
    other.delete(&room, seq, &cid).await.expect("deleted");
    say_all(&other, &mut other_events, &room, &["after".into()]).await;
    let badge = format!("{} {}", id(&format!("room-{room}")), id("unread"));
    until_one_is(&host, &badge, "1").await;

    click(&host, &id(&format!("room-{room}")));
    until_one_is(&host, &id("room-title"), &format!("#{room}")).await;
    until_texts(
        &host,
        &id("message-deleted"),
        &["message deleted".to_owned()],
    )
    .await;
    assert_eq!(texts(&host, &id("message-text")), ["after"]);
    assert!(texts(&host, &id("edited")).is_empty());
    assert!(
        !host.inner_html().contains("final words"),
        "the deleted text left the page"
    );
    other.socket().close();
    host.remove();
}

#[wasm_bindgen_test]
async fn a_refused_edit_is_said_under_the_message_and_changes_nothing() {
    let nick = unique("comp-editor");
    let (host, chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    let room = unique("comp-refused");
    join_with_form(&host, &room).await;
    let (other, mut other_events, _) = connected(&unique("comp-author")).await;
    other.join(&room).await.expect("the author joins");
    let said = say_all(&other, &mut other_events, &room, &["theirs".into()]).await;
    until_texts(&host, &id("message-text"), &["theirs".to_owned()]).await;

    // The app offers no "Edit" on someone else's message; asked anyway,
    // the server refuses, and the editor says so and stays open.
    chat.start_edit(&room, said[0].seq);
    until("the editor opens", || {
        find(&host, &id("edit-input")).is_some()
    })
    .await;
    chat.keep_draft("mine now".into());
    click(&host, &id("edit-save"));
    until_text(&host, &id("edit-error"), "Not saved: ").await;
    assert!(find(&host, &id("edit-input")).is_some(), "still open");
    click(&host, &id("edit-cancel"));
    until_texts(&host, &id("message-text"), &["theirs".to_owned()]).await;
    assert!(texts(&host, &id("edited")).is_empty());
    other.socket().close();
    host.remove();
}
