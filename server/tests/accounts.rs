//! The accounts API over HTTP: sign up, sign in, sign out, who am I; the
//! cookie's attributes; names and passwords refused; foreign origins
//! refused; sign-in throttling that answers unknown names exactly as wrong
//! passwords; sessions that expire; accounts kept across a restart.

mod common;

use common::{
    TestServer,
    api::{Api, PASSWORD, api_config, call, creds},
    temp_dir,
};
use server::{Config, sqlite::SqliteStore};
use std::{sync::Arc, time::Duration};

#[tokio::test]
async fn sign_up_sign_in_who_am_i_and_sign_out() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);

    let up = api.signup("Alice", PASSWORD).await;
    assert_eq!(up.status, 201, "{}", up.body);
    assert_eq!(up.json(), serde_json::json!({ "username": "Alice" }));
    let first = up.token();
    assert_eq!(first.len(), 32, "128 bits in hex");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        up.header("set-cookie"),
        Some(
            format!("chat_session={first}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000")
                .as_str()
        ),
        "the cookie's attributes"
    );
    assert_eq!(up.header("cache-control"), Some("no-store"));

    let me = api.me(&first).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        me.json(),
        serde_json::json!({ "username": "Alice", "admin": false })
    );
    let nobody = call(server.addr, "GET", "/api/me", &[], "").await;
    assert_eq!(nobody.status, 401);
    let forged = api.me(&"0".repeat(32)).await;
    assert_eq!(forged.status, 401);

    // Signing in by another spelling of the name gives a second session.
    let signin = api.signin("ALICE", PASSWORD).await;
    assert_eq!(signin.status, 200, "{}", signin.body);
    assert_eq!(signin.json(), serde_json::json!({ "username": "Alice" }));
    let second = signin.token();
    assert_ne!(first, second, "a fresh token each sign-in");

    let out = api.signout(&first).await;
    assert_eq!(out.status, 204);
    assert_eq!(
        out.header("set-cookie"),
        Some("chat_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
    );
    assert_eq!(
        api.me(&first).await.status,
        401,
        "the old cookie opens nothing"
    );
    assert_eq!(api.me(&second).await.status, 200, "the other session lives");
    server.stop().await;
}

#[tokio::test]
async fn names_and_passwords_that_are_refused() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    assert_eq!(api.signup("alice", PASSWORD).await.status, 201);
    // The same name in another case, in Cyrillic look-alikes, or full width.
    for taken in ["ALICE", "\u{430}\u{4cf}\u{456}\u{441}\u{435}", "ａｌｉｃｅ"] {
        let r = api.signup(taken, PASSWORD).await;
        assert_eq!(r.status, 409, "{taken}: {}", r.body);
        assert_eq!(r.json()["error"], "that name is taken");
    }
    let reasons = [
        (
            "bob",
            "password1",
            "that password is one of the most common ones; choose another",
        ),
        ("bob", "short1!", "passwords are at least 8 characters"),
        ("bob", "bob12345", "a password cannot be the username"),
    ];
    for (name, password, reason) in reasons {
        let r = api.signup(name, password).await;
        assert_eq!(r.status, 400, "{password}: {}", r.body);
        assert_eq!(r.json()["error"], reason);
    }
    // One Cyrillic letter among Latin ones is refused outright.
    let mixed = api.signup("\u{430}lice", PASSWORD).await;
    assert_eq!(mixed.status, 400, "{}", mixed.body);
    let guest = api.signup("guest-7", PASSWORD).await;
    assert_eq!(guest.status, 400);
    let invisible = api.signup("bo\u{200b}b", PASSWORD).await;
    assert_eq!(invisible.status, 400, "{}", invisible.body);
    let not_json = api.post("/api/signup", "username=bob", &[]).await;
    assert_eq!(not_json.status, 400);
    let huge = api
        .post("/api/signup", &creds("bob", &"x".repeat(8 * 1024)), &[])
        .await;
    assert_eq!(huge.status, 413, "the body is bounded");
    // None of these made an account.
    assert_eq!(api.signin("bob", PASSWORD).await.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn requests_from_a_foreign_origin_are_refused() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    assert_eq!(api.signup("carol", PASSWORD).await.status, 201);
    let evil = [("Origin", "http://evil.example")];
    let signin = call(
        server.addr,
        "POST",
        "/api/signin",
        &evil,
        &creds("carol", PASSWORD),
    )
    .await;
    assert_eq!(signin.status, 403);
    assert!(signin.header("set-cookie").is_none());
    let signup = call(
        server.addr,
        "POST",
        "/api/signup",
        &evil,
        &creds("dave", PASSWORD),
    )
    .await;
    assert_eq!(signup.status, 403);
    // A POST that names no origin is refused too (browsers always name it).
    let bare = call(
        server.addr,
        "POST",
        "/api/signin",
        &[],
        &creds("carol", PASSWORD),
    )
    .await;
    assert_eq!(bare.status, 403);
    // A cross-origin read of who is signed in, with a valid cookie.
    let token = api.signin("carol", PASSWORD).await.token();
    let cookie = format!("chat_session={token}");
    let me = call(
        server.addr,
        "GET",
        "/api/me",
        &[("Origin", "http://evil.example"), ("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(me.status, 403);
    assert_eq!(api.me(&token).await.status, 200);
    // Nothing of it counted as a failed sign-in, and dave was not made.
    for _ in 0..3 {
        assert_eq!(api.signin("dave", PASSWORD).await.status, 401);
    }
    server.stop().await;
}

#[tokio::test]
async fn failures_are_throttled_and_unknown_names_look_the_same() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    assert_eq!(api.signup("erin", PASSWORD).await.status, 201);

    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..4 {
        known.push(
            api.signin_from("erin", "wrong-pass-1", "198.51.100.1")
                .await,
        );
        unknown.push(
            api.signin_from("nobody-here", "wrong-pass-1", "198.51.100.2")
                .await,
        );
    }
    for (k, u) in known.iter().zip(&unknown) {
        assert_eq!((k.status, &k.body), (u.status, &u.body), "the same answer");
        assert_eq!(k.header("retry-after"), u.header("retry-after"));
    }
    for r in &known[..3] {
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            serde_json::json!({ "error": "wrong username or password" })
        );
    }
    let throttled = &known[3];
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    let wait: u64 = throttled
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=5).contains(&wait), "Retry-After: {wait}");

    // While throttled, even the right password waits, from any address.
    let right = api.signin_from("erin", PASSWORD, "203.0.113.9").await;
    assert_eq!(right.status, 429);
    // An address that failed on several names waits for any name.
    for name in ["n1", "n2", "n3"] {
        assert_eq!(
            api.signin_from(name, "wrong-pass-1", "198.51.100.3")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        api.signin_from("erin", PASSWORD, "198.51.100.3")
            .await
            .status,
        429
    );
    // After the wait, the right password works.
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    let after = api.signin_from("erin", PASSWORD, "203.0.113.9").await;
    assert_eq!(after.status, 200, "{}", after.body);
    server.stop().await;
}

#[tokio::test]
async fn registration_can_be_closed() {
    let server = TestServer::start(Config {
        registration: server::config::Registration::Closed,
        ..api_config()
    })
    .await;
    let api = Api::of(&server);
    let r = api.signup("frank", PASSWORD).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "registration is closed on this server");
    server.stop().await;
}

#[tokio::test]
async fn sessions_expire_when_unused_and_at_their_age_limit() {
    let server = TestServer::start(Config {
        signin_idle_secs: 1,
        ..api_config()
    })
    .await;
    let api = Api::of(&server);
    let token = api.signup("gina", PASSWORD).await.token();
    assert_eq!(api.me(&token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(api.me(&token).await.status, 401, "unused for over a second");
    server.stop().await;

    let server = TestServer::start(Config {
        signin_max_secs: 2,
        ..api_config()
    })
    .await;
    let api = Api::of(&server);
    let up = api.signup("hank", PASSWORD).await;
    assert!(
        up.header("set-cookie")
            .is_some_and(|c| c.ends_with("; Max-Age=2"))
    );
    let token = up.token();
    // Used every half second, it still ends two seconds after sign-in.
    for _ in 0..3 {
        assert_eq!(api.me(&token).await.status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(api.me(&token).await.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn accounts_and_sessions_outlive_a_restart_on_disk() {
    let dir = temp_dir("accounts-restart");
    let store = || {
        Arc::new(
            SqliteStore::open(
                &dir,
                server::sqlite::Retention {
                    max_messages: 100,
                    max_age: None,
                },
            )
            .expect("store"),
        )
    };
    let server = TestServer::start_with_store(api_config(), store()).await;
    let api = Api::of(&server);
    let token = api.signup("ivy", PASSWORD).await.token();
    server.stop().await;

    let server = TestServer::start_with_store(api_config(), store()).await;
    let api = Api::of(&server);
    let me = api.me(&token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["username"], "ivy");
    assert_eq!(api.signup("IVY", PASSWORD).await.status, 409);
    assert_eq!(api.signin("ivy", PASSWORD).await.status, 200);
    assert_eq!(api.signin("ivy", "wrong-pass-1").await.status, 401);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_registered_name_is_never_a_guests() {
    let server = TestServer::start(api_config()).await;
    let api = Api::of(&server);
    assert_eq!(api.signup("Alice", PASSWORD).await.status, 201);
    // A guest asking for it, in any spelling, gets another name.
    for wanted in [
        "alice",
        "ALICE",
        "\u{430}\u{4cf}\u{456}\u{441}\u{435}",
        "ａｌｉｃｅ",
    ] {
        let mut guest = server.client().await;
        let welcome: shared::chat::Welcome = guest
            .rich("hello", &serde_json::json!({"v": 1, "nick": wanted}))
            .await
            .expect("hello");
        assert!(
            welcome
                .nick
                .starts_with(&format!("{}-", server_nick(wanted))),
            "asked for {wanted}, got {}",
            welcome.nick
        );
        assert_ne!(
            server::names::nick_key(&welcome.nick),
            server::names::nick_key("alice")
        );
        let refused = guest
            .rich::<shared::chat::Nick>("nick", &serde_json::json!({"nick": wanted}))
            .await
            .expect_err("registered");
        assert_eq!(refused.code, shared::chat::ErrorCode::NickTaken);
        assert_eq!(
            refused.message,
            format!(
                "'{}' is a registered name; sign in to use it",
                server_nick(wanted)
            )
        );
    }
    // Other names are as before.
    let (_bob, welcome) = common::rich_client(&server, "bob").await;
    assert_eq!(welcome.nick, "bob");
    server.stop().await;
}

/// The nickname the server makes of `raw` (NFKC, as the rules do).
fn server_nick(raw: &str) -> String {
    server::names::nick(raw).expect("a valid nickname")
}

#[tokio::test]
async fn new_sessions_are_bounded_per_address_and_per_account() {
    // Per address: sign-ups and sign-ins spend the budget `hello` spends.
    let server = TestServer::start(Config {
        sessions_per_ip_per_minute: 3,
        ..api_config()
    })
    .await;
    let api = Api::of(&server);
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    for name in ["kim1", "kim2", "kim3"] {
        let r = api
            .post("/api/signup", &creds(name, PASSWORD), &from("198.51.100.7"))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let over = api
        .post(
            "/api/signup",
            &creds("kim4", PASSWORD),
            &from("198.51.100.7"),
        )
        .await;
    assert_eq!(over.status, 429);
    assert_eq!(over.header("retry-after"), Some("60"));
    assert_eq!(
        api.signin_from("kim1", PASSWORD, "198.51.100.7")
            .await
            .status,
        429
    );
    // Another address has its own budget; kim4 was never made.
    assert_eq!(
        api.signin_from("kim1", PASSWORD, "198.51.100.8")
            .await
            .status,
        200
    );
    assert_eq!(
        api.signin_from("kim4", PASSWORD, "198.51.100.8")
            .await
            .status,
        401
    );
    server.stop().await;

    // Per account, on both embedded stores: the newest sessions stay.
    let dir = temp_dir("accounts-sessions");
    let sqlite = Arc::new(
        SqliteStore::open(
            &dir,
            server::sqlite::Retention {
                max_messages: 100,
                max_age: None,
            },
        )
        .expect("store"),
    );
    let memory = Arc::new(server::memory::MemoryStore::new(100));
    let stores: [Arc<dyn server::history::HistoryStore>; 2] = [sqlite, memory];
    for store in stores {
        let server = TestServer::start_with_store(api_config(), store).await;
        let api = Api::of(&server);
        let mut tokens = vec![api.signup("lee", PASSWORD).await.token()];
        for _ in 0..25 {
            tokens.push(api.signin("lee", PASSWORD).await.token());
        }
        let kept = server::accounts::MAX_SESSIONS_PER_ACCOUNT;
        let cut = tokens.len() - kept;
        for (i, token) in tokens.iter().enumerate() {
            let want = if i < cut { 401 } else { 200 };
            assert_eq!(api.me(token).await.status, want, "session {i}");
        }
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
