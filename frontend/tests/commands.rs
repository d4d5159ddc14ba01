//! Every slash command typed in the composer of the mounted app, against the
//! real server: what it does there (checked from other clients) and what
//! the app shows. Its own test binary: the runner gives each binary 20 s,
//! and `/long` takes 3 of them.
// Browser-only: on other targets this test binary is empty.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{app::*, *};
use frontend::state::{NICK_KEY, command::HELP};
use shared::chat::PresenceKind;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The notices of the room on screen.
fn notices(host: &web_sys::HtmlElement) -> Vec<String> {
    texts(host, &id("notice"))
}

/// Waits for a notice that `pick` accepts and returns it.
async fn notice_like(
    host: &web_sys::HtmlElement,
    what: &str,
    pick: impl Fn(&str) -> bool,
) -> String {
    until_some(UI_MS, what, || notices(host).into_iter().find(|n| pick(n))).await
}

#[wasm_bindgen_test]
async fn slash_commands_do_what_they_say() {
    let nick = unique("cmd-user");
    let (host, chat, _handle) = mount(Some(&nick));
    online_as(&host, &nick).await;
    let room = unique("cmd-room");
    let (watcher, mut watcher_events, welcome) = connected(&unique("cmd-watcher")).await;
    let watcher_nick = welcome.nick;
    watcher.join(&room).await.expect("the watcher joins");

    // /join ROOM: joined on the server, and on screen.
    send(&host, &format!("/join #{room}"));
    until_one_is(&host, &id("room-title"), &format!("#{room}")).await;
    assert!(
        find(&host, &id(&format!("room-{room}"))).is_some(),
        "in the sidebar"
    );
    presence(&mut watcher_events, &room, &nick, PresenceKind::Join).await;
    let seen = room_on_server(&room).await;
    let mut expected = vec![nick.clone(), watcher_nick.clone(), seen.probe.clone()];
    expected.sort();
    assert_eq!(seen.members, expected);

    // /nick NAME: renamed on the server, shown and remembered.
    let renamed = unique("cmd-renamed");
    send(&host, &format!("/nick {renamed}"));
    until_one_is(&host, &format!("{} .nick", id("nick-button")), &renamed).await;
    let rename = presence(&mut watcher_events, &room, &renamed, PresenceKind::Rename).await;
    assert_eq!(rename.old.as_deref(), Some(nick.as_str()));
    assert_eq!(
        frontend::state::load(true, NICK_KEY).as_deref(),
        Some(renamed.as_str())
    );
    let seen = room_on_server(&room).await;
    let mut expected = vec![renamed.clone(), watcher_nick.clone(), seen.probe.clone()];
    expected.sort();
    assert_eq!(seen.members, expected, "the server knows the new nick only");

    // Commands answered by the server, shown as notices.
    send(&host, "/upper grüße, straße");
    until_one_is(&host, &id("notice"), "GRÜSSE, STRASSE").await;

    send(&host, "/ping");
    let pong = notice_like(&host, "a pong notice", |n| n.starts_with("pong: ")).await;
    let ms = pong
        .strip_prefix("pong: round trip ")
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("pong notice {pong:?}"));
    assert!(ms >= 0.0, "a round trip of {ms} ms");

    send(&host, "/myip");
    let ip = notice_like(&host, "a myip notice", |n| {
        n.starts_with("the server sees you as ")
    })
    .await;
    let port = ip
        .strip_prefix("the server sees you as 127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("myip notice {ip:?}"));
    assert_ne!(port, 0);

    send(&host, "/help");
    until_one_is(&host, &id("notice"), HELP).await;

    // Mistakes are said at the input, which keeps the text to fix.
    send(&host, "/frobnicate now");
    until_one_is(
        &host,
        &id("composer-error"),
        "unknown command /frobnicate; try /help",
    )
    .await;
    send(&host, "/join two words");
    until_one_is(
        &host,
        &id("composer-error"),
        "room names are 1 to 32 characters of a-z, 0-9, '-' and '_'",
    )
    .await;
    let area: web_sys::HtmlTextAreaElement = find(&host, &id("composer"))
        .expect("composer")
        .dyn_into()
        .expect("textarea");
    assert_eq!(area.value(), "/join two words", "kept to be fixed");

    // None of those went to the room as a message: after a real one, the
    // room's history holds that one only.
    send(&host, "after the commands");
    let said = next_event(
        &mut watcher_events,
        10_000,
        "the message",
        |e| matches!(e, frontend::net::chat::ChatEvent::Msg(m) if m.room == room),
    )
    .await;
    let frontend::net::chat::ChatEvent::Msg(said) = said else {
        unreachable!("picked a msg")
    };
    assert_eq!(
        (said.from.as_str(), said.text.as_str()),
        (renamed.as_str(), "after the commands"),
        "the first message the room got"
    );
    let seen = room_on_server(&room).await;
    let stored: Vec<&str> = seen.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(stored, ["after the commands"]);

    // /long under 3 s: cancelled with a Reset (the server's side of it is
    // proven in client.rs), then /long with the default timeout: done.
    send(&host, "/long 400");
    until_one_is(&host, &id("notice"), "long task started (timeout 400 ms)…").await;
    until_one_is(
        &host,
        &id("notice"),
        "long task cancelled with a Reset after 400 ms",
    )
    .await;
    send(&host, "/long");
    until_one_is(
        &host,
        &id("notice"),
        "long task started (timeout 10000 ms)…",
    )
    .await;
    let done = notice_like(&host, "the long task's answer", |n| {
        n.starts_with("long task: ")
    })
    .await;
    let took = done
        .strip_prefix("long task: done! after ")
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("long task notice {done:?}"));
    assert!(
        took >= 3_000,
        "the server works 3 s; answered after {took} ms"
    );
    let long_notices: Vec<String> = notices(&host)
        .into_iter()
        .filter(|n| n.starts_with("long task"))
        .collect();
    assert_eq!(
        long_notices,
        [
            "long task started (timeout 400 ms)…".to_owned(),
            "long task cancelled with a Reset after 400 ms".to_owned(),
            "long task started (timeout 10000 ms)…".to_owned(),
            done.clone(),
        ]
    );

    // The lobby cannot be left, here as in the sidebar (no leave button).
    click(&host, &id("room-lobby"));
    until_one_is(&host, &id("room-title"), "#lobby").await;
    send(&host, "/leave");
    until_one_is(
        &host,
        &id("composer-error"),
        "#lobby cannot be left: everyone is in it",
    )
    .await;
    assert!(find(&host, &id("leave-lobby")).is_none());
    assert!(
        find(&host, &id("room-lobby")).is_some(),
        "still in the lobby"
    );
    click(&host, &id(&format!("room-{room}")));
    until_one_is(&host, &id("room-title"), &format!("#{room}")).await;

    // /leave: left on the server, gone from the sidebar.
    send(&host, "/leave");
    until_gone(&host, &id(&format!("room-{room}"))).await;
    assert_eq!(texts(&host, &id("room-title")), ["#lobby"]);
    presence(&mut watcher_events, &room, &renamed, PresenceKind::Leave).await;
    let seen = room_on_server(&room).await;
    let mut expected = vec![watcher_nick.clone(), seen.probe.clone()];
    expected.sort();
    assert_eq!(
        seen.members, expected,
        "the server no longer lists the user"
    );
    assert_eq!(
        chat.client().rooms(),
        ["lobby".to_owned()],
        "the client is in the lobby only"
    );
    watcher.socket().close();
    host.remove();
}
