//! A signed-in socket: the sign-in cookie rides the WebSocket upgrade, so
//! the socket is that account from its first frame; signing out closes
//! it at once; a foreign page's socket carrying the cookie is refused; a
//! chat session's token resumes it only for the same account; with
//! `--guests deny` only signed-in sockets chat.

mod common;

use common::{
    Client, End, TestServer,
    api::{Api, PASSWORD, api_config},
};
use server::{Config, config::Guests};
use shared::chat::{ErrorCode, Nick, Presence, PresenceKind, Welcome};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, http::HeaderValue};

/// A socket upgrade with these extra headers (`Cookie`, `Origin`).
async fn upgrade(server: &TestServer, headers: &[(&str, &str)]) -> Result<Client, u16> {
    let mut req = common::request(&server.url());
    for (name, value) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(Client::from_ws(ws)),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

fn cookie(token: &str) -> String {
    format!("chat_session={token}")
}

/// A socket signed in with `token`, from the server's own page.
async fn signed_socket(server: &TestServer, token: &str) -> Client {
    let origin = format!("http://{}", server.addr);
    upgrade(server, &[("Cookie", &cookie(token)), ("Origin", &origin)])
        .await
        .expect("upgrade")
}

async fn hello(client: &mut Client, body: serde_json::Value) -> Welcome {
    client.rich("hello", &body).await.expect("hello")
}

#[tokio::test]
async fn a_signed_in_socket_is_its_account_from_the_first_frame() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    let token = api.signup("Alice", PASSWORD).await.token();

    // Whatever it asks for, the socket is Alice.
    let mut one = signed_socket(&server, &token).await;
    let welcome = hello(&mut one, serde_json::json!({"v": 1, "nick": "mallory"})).await;
    assert_eq!(welcome.nick, "Alice");
    let lobby = welcome
        .rooms
        .iter()
        .find(|r| r.room == "lobby")
        .expect("lobby");
    assert_eq!(lobby.members, vec!["Alice".to_owned()]);
    // It cannot take another name; its own (any spelling) is a no-op.
    let refused = one
        .rich::<Nick>("nick", &serde_json::json!({"nick": "bob"}))
        .await
        .expect_err("signed in");
    assert_eq!(refused.code, ErrorCode::BadRequest);
    assert_eq!(
        refused.message,
        "signed in as 'Alice': your name is your account's"
    );
    let same: Nick = one
        .rich("nick", &serde_json::json!({"nick": "ALICE"}))
        .await
        .expect("own name");
    assert_eq!(same.nick, "Alice");

    // A guest watching the lobby sees one Alice, however many tabs.
    let (mut guest, _) = common::rich_client(&server, "watcher").await;
    guest.forget_pending().await;
    let mut two = signed_socket(&server, &token).await;
    let again = hello(&mut two, serde_json::json!({"v": 1})).await;
    assert_eq!(again.nick, "Alice");
    let lobby = again
        .rooms
        .iter()
        .find(|r| r.room == "lobby")
        .expect("lobby");
    assert_eq!(
        lobby.members,
        vec!["Alice".to_owned(), "watcher".to_owned()]
    );
    guest
        .assert_no_event_within(
            "presence",
            Duration::from_millis(300),
            "a second tab is no news",
        )
        .await;
    two.close().await;
    guest
        .assert_no_event_within(
            "presence",
            Duration::from_millis(300),
            "Alice is still here",
        )
        .await;
    one.close().await;
    let left: Presence = guest.event_json("presence").await;
    assert_eq!(
        (left.nick.as_str(), left.what),
        ("Alice", PresenceKind::Leave)
    );

    // What Alice says is from Alice.
    let mut three = signed_socket(&server, &token).await;
    hello(&mut three, serde_json::json!({"v": 1})).await;
    let _: serde_json::Value = three
        .rich(
            "say",
            &serde_json::json!({"room": "lobby", "text": "it is me", "cid": "c1"}),
        )
        .await
        .expect("say");
    let msg = guest.next_msg("lobby").await;
    assert_eq!(
        (msg.from.as_str(), msg.text.as_str()),
        ("Alice", "it is me")
    );
    server.stop().await;
}

#[tokio::test]
async fn signing_out_closes_the_sessions_sockets_and_the_cookie_opens_nothing_after() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    let token = api.signup("alice", PASSWORD).await.token();
    let other = api.signin("alice", PASSWORD).await.token();
    let mut a = signed_socket(&server, &token).await;
    let mut b = signed_socket(&server, &token).await;
    let mut elsewhere = signed_socket(&server, &other).await;
    for s in [&mut a, &mut b, &mut elsewhere] {
        assert_eq!(hello(s, serde_json::json!({"v": 1})).await.nick, "alice");
    }
    assert_eq!(api.signout(&token).await.status, 204);
    for s in [&mut a, &mut b] {
        assert_eq!(
            s.close_reason().await,
            Some((1008, "signed out".to_owned())),
            "the signed-out session's sockets close at once"
        );
    }
    // The other sign-in session is untouched.
    elsewhere.assert_alive(None, "another session").await;
    // The old cookie now opens a guest's socket, never alice's.
    let mut after = signed_socket(&server, &token).await;
    let guest = hello(&mut after, serde_json::json!({"v": 1, "nick": "alice"})).await;
    assert_ne!(server::names::nick_key(&guest.nick), "alice");
    assert!(guest.nick.starts_with("alice-"), "{}", guest.nick);
    assert_eq!(api.me(&token).await.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn a_foreign_pages_socket_is_refused_even_with_a_valid_cookie() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    let token = api.signup("alice", PASSWORD).await.token();
    let refused = upgrade(
        &server,
        &[
            ("Cookie", &cookie(&token)),
            ("Origin", "http://evil.example"),
        ],
    )
    .await
    .err();
    assert_eq!(refused, Some(403));
    // The same cookie from the server's own page is alice.
    let mut own = signed_socket(&server, &token).await;
    assert_eq!(
        hello(&mut own, serde_json::json!({"v": 1})).await.nick,
        "alice"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_chat_sessions_token_resumes_it_only_for_the_same_account() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    let token = api.signup("alice", PASSWORD).await.token();
    let mut a = signed_socket(&server, &token).await;
    let welcome = hello(&mut a, serde_json::json!({"v": 1})).await;
    let _: serde_json::Value = a
        .rich("join", &serde_json::json!({"room": "plans"}))
        .await
        .expect("join");
    a.close().await;
    // A guest holding that token starts a session of its own: not alice,
    // and not in her rooms.
    let mut guest = server.client().await;
    let other = hello(
        &mut guest,
        serde_json::json!({"v": 1, "session": welcome.session}),
    )
    .await;
    assert_ne!(other.session, welcome.session);
    assert_ne!(server::names::nick_key(&other.nick), "alice");
    assert!(other.rooms.iter().all(|r| r.room != "plans"));
    // Alice, signed in, gets it back with her rooms.
    let mut back = signed_socket(&server, &token).await;
    let resumed = hello(
        &mut back,
        serde_json::json!({"v": 1, "session": welcome.session}),
    )
    .await;
    assert_eq!(resumed.session, welcome.session);
    assert!(resumed.rooms.iter().any(|r| r.room == "plans"));
    server.stop().await;
}

#[tokio::test]
async fn with_guests_denied_only_signed_in_sockets_chat() {
    let server = TestServer::start(Config {
        guests: Guests::Deny,
        ..api_config()
    })
    .await;
    let api = Api::of(&server);
    let token = api.signup("alice", PASSWORD).await.token();
    // A chat client and an original demo client alike get a clear close.
    let mut chat = server.client().await;
    assert_eq!(
        chat.close_reason().await,
        Some((
            1008,
            "sign in to chat here: this server does not allow guests".to_owned()
        ))
    );
    let mut demo = server.client().await;
    demo.notify("broadcast", "hi").await;
    assert!(matches!(demo.ended().await, End::Closed(1008)));
    // A cookie that names no session is a guest's.
    let mut stale = signed_socket(&server, &"0".repeat(32)).await;
    assert!(matches!(stale.ended().await, End::Closed(1008)));
    let mut a = signed_socket(&server, &token).await;
    assert_eq!(
        hello(&mut a, serde_json::json!({"v": 1})).await.nick,
        "alice"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_its_sockets() {
    password_change(TestServer::start(api_config()).await).await;
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_on_disk_too() {
    let dir = common::temp_dir("password-change");
    let store = server::sqlite::SqliteStore::open(
        &dir,
        server::sqlite::Retention {
            max_messages: 100,
            max_age: None,
        },
    )
    .expect("store");
    password_change(TestServer::start_with_store(api_config(), std::sync::Arc::new(store)).await)
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn password_change(server: TestServer) {
    let api = Api::of(&server);
    let here = api.signup("alice", PASSWORD).await.token();
    let elsewhere = api.signin("alice", PASSWORD).await.token();
    let mut mine = signed_socket(&server, &here).await;
    let mut theirs = signed_socket(&server, &elsewhere).await;
    for s in [&mut mine, &mut theirs] {
        assert_eq!(hello(s, serde_json::json!({"v": 1})).await.nick, "alice");
    }
    let change = |current: &str, new: &str| {
        serde_json::json!({"password": current, "new_password": new}).to_string()
    };
    let cookie_here = cookie(&here);
    // A wrong current password changes nothing.
    let wrong = api
        .post(
            "/api/password",
            &change("not-it-at-all", "fresh-Pass-77"),
            &[("Cookie", &cookie_here)],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "the current password is wrong");
    // Without a session: 401; a weak new one: 400 with the reason.
    let anon = api
        .post("/api/password", &change(PASSWORD, "fresh-Pass-77"), &[])
        .await;
    assert_eq!(anon.status, 401);
    let weak = api
        .post(
            "/api/password",
            &change(PASSWORD, "password"),
            &[("Cookie", &cookie_here)],
        )
        .await;
    assert_eq!(weak.status, 400);
    assert_eq!(api.me(&elsewhere).await.status, 200, "nothing changed yet");

    let done = api
        .post(
            "/api/password",
            &change(PASSWORD, "fresh-Pass-77"),
            &[("Cookie", &cookie_here)],
        )
        .await;
    assert_eq!(done.status, 204, "{}", done.body);
    // The other session is over, and its socket closed at once; this one lives.
    assert_eq!(
        theirs.close_reason().await,
        Some((1008, "signed out".to_owned()))
    );
    assert_eq!(api.me(&elsewhere).await.status, 401);
    assert_eq!(api.me(&here).await.status, 200);
    mine.assert_alive(None, "the session that changed it").await;
    assert_eq!(
        api.signin("alice", PASSWORD).await.status,
        401,
        "the old password"
    );
    assert_eq!(api.signin("alice", "fresh-Pass-77").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    let one = api.signup("alice", PASSWORD).await.token();
    let two = api.signin("alice", PASSWORD).await.token();
    let bob = api.signup("bob", PASSWORD).await.token();
    let mut a1 = signed_socket(&server, &one).await;
    let mut a2 = signed_socket(&server, &two).await;
    let mut b = signed_socket(&server, &bob).await;
    for s in [&mut a1, &mut a2, &mut b] {
        hello(s, serde_json::json!({"v": 1})).await;
    }
    let out = api
        .post("/api/signout-everywhere", "", &[("Cookie", &cookie(&two))])
        .await;
    assert_eq!(out.status, 204);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.starts_with("chat_session=;") && c.contains("Max-Age=0"))
    );
    for s in [&mut a1, &mut a2] {
        assert_eq!(
            s.close_reason().await,
            Some((1008, "signed out".to_owned()))
        );
    }
    assert_eq!(api.me(&one).await.status, 401);
    assert_eq!(api.me(&two).await.status, 401);
    assert_eq!(api.me(&bob).await.status, 200, "another account's session");
    b.assert_alive(None, "bob is not alice").await;
    server.stop().await;
}
