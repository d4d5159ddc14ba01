//! Private rooms, direct messages and moderation over raw sockets, as a
//! modified client could drive them: nothing of a private room reaches an
//! account that is not in it, through any request (join, history, say,
//! typing, leave, resume, rooms, invite, kick, actions), and an unknown
//! private room answers exactly as a forbidden one; a ban takes the
//! account out at once and keeps it out from any new session. Run on the
//! SQLite store (roles and rooms on disk).

mod common;

use common::{
    Client, TestServer,
    api::{Api, PASSWORD, api_config},
    temp_dir,
};
use shared::{
    chat::{ErrorBody, ErrorCode, Msg, Presence, RoomInfo, RoomState, Welcome},
    rooms::{ActionInfo, Invited, Removed},
};
use std::{sync::Arc, time::Duration};
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn signed_socket(server: &TestServer, token: &str) -> (Client, Welcome) {
    let mut req = common::request(&server.url());
    let headers = req.headers_mut();
    headers.insert(
        "Cookie",
        HeaderValue::from_str(&format!("chat_session={token}")).expect("cookie"),
    );
    headers.insert(
        "Origin",
        HeaderValue::from_str(&format!("http://{}", server.addr)).expect("origin"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let mut client = Client::from_ws(ws);
    let welcome: Welcome = client
        .rich("hello", &serde_json::json!({"v": 1}))
        .await
        .expect("hello");
    (client, welcome)
}

fn on_disk() -> (std::path::PathBuf, Arc<server::sqlite::SqliteStore>) {
    let dir = temp_dir("private-rooms");
    let store = server::sqlite::SqliteStore::open(
        &dir,
        server::sqlite::Retention {
            max_messages: 1_000,
            max_age: None,
        },
    )
    .expect("store");
    (dir, Arc::new(store))
}

async fn say(
    client: &mut Client,
    room: &str,
    text: &str,
    cid: &str,
) -> Result<serde_json::Value, ErrorBody> {
    client
        .rich(
            "say",
            &serde_json::json!({"room": room, "text": text, "cid": cid}),
        )
        .await
}

/// The next `presence` about `room` (others, e.g. the lobby's, skipped).
async fn presence_in(client: &mut Client, room: &str) -> Presence {
    loop {
        let p: Presence = client.event_json("presence").await;
        if p.room == room {
            return p;
        }
    }
}

async fn rooms(client: &mut Client) -> Vec<RoomInfo> {
    client
        .rich("rooms", &serde_json::json!({}))
        .await
        .expect("rooms")
}

#[tokio::test]
async fn nothing_of_a_private_room_reaches_anyone_outside_it() {
    let (dir, store) = on_disk();
    let server = TestServer::start_with_store(api_config(), store).await;
    let api = Api::of(&server);
    let (a_token, b_token, c_token) = (
        api.signup("ann", PASSWORD).await.token(),
        api.signup("bob", PASSWORD).await.token(),
        api.signup("cyd", PASSWORD).await.token(),
    );
    let (mut a, _) = signed_socket(&server, &a_token).await;
    let (mut b, _) = signed_socket(&server, &b_token).await;
    let (mut c, _) = signed_socket(&server, &c_token).await;
    let (mut guest, _) = common::rich_client(&server, "visitor").await;

    // Ann makes a private room: a name the server made, her title, her room.
    let plans: RoomState = a
        .rich("create", &serde_json::json!({"title": "Secret plans"}))
        .await
        .expect("create");
    let room = plans.room.clone();
    assert!(room.starts_with("p-") && room.len() == 18, "{room}");
    assert_eq!(plans.title.as_deref(), Some("Secret plans"));
    assert_eq!(plans.role.as_deref(), Some("owner"));
    assert_eq!(plans.members, vec!["ann".to_owned()]);
    say(&mut a, &room, "meet at noon", "a1").await.expect("say");
    // A guest cannot make one.
    let refused = guest
        .rich::<RoomState>("create", &serde_json::json!({"title": "x"}))
        .await
        .expect_err("guests have none");
    assert_eq!(refused.code, ErrorCode::Forbidden);

    // Cyd, a modified client, tries every request there is.
    let unknown = "p-0123456789abcdef";
    for client in [&mut c, &mut guest] {
        for name in [room.as_str(), unknown] {
            let joined = client
                .rich::<RoomState>("join", &serde_json::json!({"room": name}))
                .await
                .expect_err("not for them");
            assert_eq!(joined.code, ErrorCode::NoSuchRoom);
            assert_eq!(
                joined.message,
                format!("there is no room '{name}' that you may enter"),
                "an unknown and a forbidden private room answer alike"
            );
            let history = client
                .rich::<Vec<Msg>>(
                    "history",
                    &serde_json::json!({"room": name, "before": 100, "limit": 50}),
                )
                .await
                .expect_err("not joined");
            assert_eq!(history.code, ErrorCode::NotJoined);
            let said = say(client, name, "hi?", "c1")
                .await
                .expect_err("not joined");
            assert_eq!(said.code, ErrorCode::NotJoined);
            let left = client
                .rich::<serde_json::Value>("leave", &serde_json::json!({"room": name}))
                .await
                .expect_err("not joined");
            assert_eq!(left.code, ErrorCode::NotJoined);
            client
                .notify(
                    "typing",
                    serde_json::to_vec(&serde_json::json!({"room": name, "on": true}))
                        .expect("json"),
                )
                .await;
        }
        assert!(
            rooms(client).await.iter().all(|r| r.room != room),
            "not listed"
        );
    }
    for (event, body) in [
        ("invite", serde_json::json!({"room": room, "user": "cyd"})),
        ("kick", serde_json::json!({"room": room, "user": "ann"})),
        ("ban", serde_json::json!({"room": room, "user": "bob"})),
        (
            "moderator",
            serde_json::json!({"room": room, "user": "cyd"}),
        ),
        ("actions", serde_json::json!({"room": room})),
    ] {
        let e = c
            .rich::<serde_json::Value>(event, &body)
            .await
            .expect_err(event);
        assert_eq!(
            (e.code, e.message),
            (
                ErrorCode::NoSuchRoom,
                format!("there is no room '{room}' that you may enter")
            ),
            "{event}"
        );
    }
    // A resumed cursor and a new session bring nothing back either.
    let (mut c2, welcome) = {
        let mut req = common::request(&server.url());
        req.headers_mut().insert(
            "Cookie",
            HeaderValue::from_str(&format!("chat_session={c_token}")).expect("cookie"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("upgrade");
        let mut client = Client::from_ws(ws);
        let welcome: Welcome = client
            .rich(
                "hello",
                &serde_json::json!({"v": 1, "resume": [{"room": room, "epoch": plans.epoch, "seq": 0}]}),
            )
            .await
            .expect("hello");
        (client, welcome)
    };
    assert!(welcome.rooms.iter().all(|r| r.room != room));

    // Bob is invited: he hears of it, sees it listed, joins, reads it.
    a.rich::<serde_json::Value>("invite", &serde_json::json!({"room": room, "user": "Bob"}))
        .await
        .expect("invite");
    let invited: Invited = b.event_json("invited").await;
    assert_eq!(
        (
            invited.room.as_str(),
            invited.title.as_str(),
            invited.by.as_str()
        ),
        (room.as_str(), "Secret plans", "ann")
    );
    let listed = rooms(&mut b).await;
    let row = listed
        .iter()
        .find(|r| r.room == room)
        .expect("listed to bob");
    assert_eq!(row.title.as_deref(), Some("Secret plans"));
    let inside: RoomState = b
        .rich("join", &serde_json::json!({"room": room}))
        .await
        .expect("bob joins");
    assert_eq!(inside.role.as_deref(), Some("member"));
    assert_eq!(
        inside
            .history
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>(),
        ["meet at noon"]
    );
    let joined = presence_in(&mut a, &room).await;
    assert_eq!(joined.nick, "bob");
    b.notify(
        "typing",
        serde_json::to_vec(&serde_json::json!({"room": room, "on": true})).expect("json"),
    )
    .await;
    say(&mut b, &room, "noon works", "b1")
        .await
        .expect("bob says");
    assert_eq!(
        a.next_msg(&room).await.text,
        "meet at noon",
        "her own, first"
    );
    let heard = a.next_msg(&room).await;
    assert_eq!(
        (heard.from.as_str(), heard.text.as_str()),
        ("bob", "noon works")
    );
    // A member who is not a moderator cannot let others in.
    let not_mod = b
        .rich::<serde_json::Value>("invite", &serde_json::json!({"room": room, "user": "cyd"}))
        .await
        .expect_err("members do not invite");
    assert_eq!(not_mod.code, ErrorCode::Forbidden);

    // Ann kicks Bob: he is out at once, and cannot come back.
    a.rich::<serde_json::Value>("kick", &serde_json::json!({"room": room, "user": "bob"}))
        .await
        .expect("kick");
    let removed: Removed = b.event_json("removed").await;
    assert_eq!(
        (removed.room.as_str(), removed.by.as_str(), removed.banned),
        (room.as_str(), "ann", false)
    );
    let after = say(&mut b, &room, "still here?", "b2")
        .await
        .expect_err("out");
    assert_eq!(after.code, ErrorCode::NotJoined);
    let history = b
        .rich::<Vec<Msg>>(
            "history",
            &serde_json::json!({"room": room, "before": 100, "limit": 50}),
        )
        .await
        .expect_err("out");
    assert_eq!(history.code, ErrorCode::NotJoined);
    let back = b
        .rich::<RoomState>("join", &serde_json::json!({"room": room}))
        .await
        .expect_err("out");
    assert_eq!(back.code, ErrorCode::NoSuchRoom);
    let actions: Vec<ActionInfo> = a
        .rich("actions", &serde_json::json!({"room": room}))
        .await
        .expect("actions");
    assert_eq!(
        actions
            .iter()
            .map(|x| (x.what.as_str(), x.by.as_str(), x.whom.as_str()))
            .collect::<Vec<_>>(),
        [("kick", "ann", "bob"), ("invite", "ann", "bob")]
    );

    // After all that, Cyd's and the guest's sockets never carried a byte
    // of the room: not its name, its title, its text, its members.
    for client in [&mut c, &mut c2, &mut guest] {
        client.round_trip().await;
        for (event, payload) in client.pending_notifies() {
            let text = String::from_utf8_lossy(&payload);
            for secret in [room.as_str(), "Secret plans", "meet at noon", "noon works"] {
                assert!(!text.contains(secret), "{event} carried {secret:?}: {text}");
            }
        }
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn direct_messages_are_for_their_two() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    let a_token = api.signup("ann", PASSWORD).await.token();
    let b_token = api.signup("bob", PASSWORD).await.token();
    let c_token = api.signup("cyd", PASSWORD).await.token();
    let (mut a, _) = signed_socket(&server, &a_token).await;
    let (mut b, _) = signed_socket(&server, &b_token).await;
    let (mut c, _) = signed_socket(&server, &c_token).await;
    let dm: RoomState = a
        .rich("dm", &serde_json::json!({"user": "BOB"}))
        .await
        .expect("dm");
    assert!(dm.room.starts_with("dm-"), "{}", dm.room);
    assert_eq!(dm.title.as_deref(), Some("ann\nbob"));
    let invited: Invited = b.event_json("invited").await;
    assert_eq!(
        (invited.room.as_str(), invited.by.as_str()),
        (dm.room.as_str(), "ann")
    );
    let same: RoomState = b
        .rich("dm", &serde_json::json!({"user": "ann"}))
        .await
        .expect("dm back");
    assert_eq!(same.room, dm.room, "one room for the two, whoever opens it");
    say(&mut a, &dm.room, "just us", "a1").await.expect("say");
    assert_eq!(b.next_msg(&dm.room).await.text, "just us");
    say(&mut b, &dm.room, "indeed", "b1").await.expect("say");
    assert_eq!(a.next_msg(&dm.room).await.text, "just us", "her own, first");
    assert_eq!(a.next_msg(&dm.room).await.text, "indeed");
    let outsider = c
        .rich::<RoomState>("join", &serde_json::json!({"room": dm.room}))
        .await
        .expect_err("not theirs");
    assert_eq!(outsider.code, ErrorCode::NoSuchRoom);
    for (user, why) in [("ann", "with oneself"), ("nobody", "no such account")] {
        let e = a
            .rich::<RoomState>("dm", &serde_json::json!({"user": user}))
            .await
            .expect_err(why);
        assert_eq!(e.code, ErrorCode::BadRequest, "{why}");
    }
    let guest = common::rich_client(&server, "visitor").await.0;
    drop(guest);
    server.stop().await;
}

#[tokio::test]
async fn a_ban_takes_the_account_out_at_once_and_keeps_it_out() {
    let (dir, store) = on_disk();
    let server = TestServer::start_with_store(api_config(), store).await;
    let api = Api::of(&server);
    let a_token = api.signup("ann", PASSWORD).await.token();
    let c_token = api.signup("cyd", PASSWORD).await.token();
    let (mut a, _) = signed_socket(&server, &a_token).await;
    let (mut c, _) = signed_socket(&server, &c_token).await;
    // Ann makes a public room: she owns it.
    let town: RoomState = a
        .rich("join", &serde_json::json!({"room": "town"}))
        .await
        .expect("join");
    assert_eq!(town.role.as_deref(), Some("owner"));
    let mut c_tab2 = signed_socket(&server, &c_token).await.0;
    for client in [&mut c, &mut c_tab2] {
        client
            .rich::<RoomState>("join", &serde_json::json!({"room": "town"}))
            .await
            .expect("cyd joins");
    }
    let not_owner = c
        .rich::<serde_json::Value>("ban", &serde_json::json!({"room": "town", "user": "ann"}))
        .await
        .expect_err("not a moderator");
    assert_eq!(not_owner.code, ErrorCode::Forbidden);
    a.forget_pending().await;
    a.rich::<serde_json::Value>("ban", &serde_json::json!({"room": "town", "user": "cyd"}))
        .await
        .expect("ban");
    // Both of Cyd's sockets are out at once, told by whom.
    for client in [&mut c, &mut c_tab2] {
        let removed: Removed = client.event_json("removed").await;
        assert_eq!(
            (removed.room.as_str(), removed.by.as_str(), removed.banned),
            ("town", "ann", true)
        );
        let e = say(client, "town", "let me in", "c9")
            .await
            .expect_err("out");
        assert_eq!(e.code, ErrorCode::NotJoined);
    }
    // Ann sees Cyd leave once.
    let left = presence_in(&mut a, "town").await;
    assert_eq!(left.nick, "cyd");
    a.assert_no_event_within(
        "presence",
        Duration::from_millis(200),
        "one leave for two sockets",
    )
    .await;
    // Not from this socket, nor a new sign-in in another browser.
    let again = c
        .rich::<RoomState>("join", &serde_json::json!({"room": "town"}))
        .await
        .expect_err("banned");
    assert_eq!(
        (again.code, again.message.as_str()),
        (ErrorCode::Forbidden, "you are banned from 'town'")
    );
    let fresh = api.signin_from("cyd", PASSWORD, "192.0.2.77").await.token();
    let (mut elsewhere, _) = signed_socket(&server, &fresh).await;
    let e = elsewhere
        .rich::<RoomState>("join", &serde_json::json!({"room": "town"}))
        .await
        .expect_err("banned");
    assert_eq!(e.code, ErrorCode::Forbidden);
    // The record shows it; unban lets Cyd back.
    let actions: Vec<ActionInfo> = a
        .rich("actions", &serde_json::json!({"room": "town"}))
        .await
        .expect("actions");
    assert_eq!(
        (actions[0].what.as_str(), actions[0].whom.as_str()),
        ("ban", "cyd")
    );
    a.rich::<serde_json::Value>("unban", &serde_json::json!({"room": "town", "user": "cyd"}))
        .await
        .expect("unban");
    elsewhere
        .rich::<RoomState>("join", &serde_json::json!({"room": "town"}))
        .await
        .expect("back after the unban");
    // A guest can be removed (not banned: a guest is nobody in particular).
    let (mut spam, _) = common::rich_client(&server, "spammer").await;
    spam.rich::<RoomState>("join", &serde_json::json!({"room": "town"}))
        .await
        .expect("guest joins");
    a.rich::<serde_json::Value>(
        "kick",
        &serde_json::json!({"room": "town", "user": "spammer"}),
    )
    .await
    .expect("kick a guest");
    let removed: Removed = spam.event_json("removed").await;
    assert_eq!((removed.room.as_str(), removed.banned), ("town", false));
    let e = say(&mut spam, "town", "buy now", "s1")
        .await
        .expect_err("out");
    assert_eq!(e.code, ErrorCode::NotJoined);
    let no_ban = a
        .rich::<serde_json::Value>(
            "ban",
            &serde_json::json!({"room": "town", "user": "spammer"}),
        )
        .await
        .expect_err("no account to ban");
    assert_eq!(no_ban.code, ErrorCode::BadRequest);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn new_direct_messages_spend_the_address_budget_for_new_rooms() {
    const BUDGET: u32 = 3;
    let server = TestServer::start(server::Config {
        rooms_per_ip_per_minute: BUDGET,
        ..api_config()
    })
    .await;
    let api = Api::of(&server);
    let ann = api.signup("ann", PASSWORD).await.token();
    let (mut a, _) = signed_socket(&server, &ann).await;
    // One direct message per new account, until the budget says no.
    let mut opened = Vec::new();
    let refused = loop {
        let name = format!("peer{}", opened.len());
        api.signup(&name, PASSWORD).await.token();
        match a
            .rich::<RoomState>("dm", &serde_json::json!({ "user": name }))
            .await
        {
            Ok(dm) => opened.push(dm.room),
            Err(e) => break e,
        }
        assert!(
            opened.len() <= BUDGET as usize,
            "{} new direct messages from one address in a minute",
            opened.len()
        );
    };
    assert_eq!(refused.code, ErrorCode::RateLimited, "{refused:?}");
    assert!(!opened.is_empty(), "the budget allows some");
    // One already made opens again without spending anything.
    let again: RoomState = a
        .rich("dm", &serde_json::json!({"user": "peer0"}))
        .await
        .expect("an existing direct message");
    assert_eq!(again.room, opened[0]);
}
