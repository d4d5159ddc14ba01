//! Search over the wire, on SQLite (FTS5) and on the memory store: the
//! start of every word, filters, the final state of edited and deleted
//! messages, and only rooms the person may read (a private room's
//! messages never reach an outsider; a ban hides the room).

mod common;

use common::{
    Client, TestServer,
    api::{Api, PASSWORD, api_config},
    temp_dir,
};
use serde_json::json;
use shared::chat::{ErrorCode, Msg, RoomState, Said, Welcome};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn signed_socket(server: &TestServer, token: &str) -> Client {
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
    let _: Welcome = client.rich("hello", &json!({"v": 1})).await.expect("hello");
    client
}

/// Says `text`; messages said one after the other have distinct times
/// (results are newest first; one millisecond holds no order).
async fn say(c: &mut Client, room: &str, text: &str, cid: &str) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let said: Said = c
        .rich("say", &json!({"room": room, "text": text, "cid": cid}))
        .await
        .expect("say");
    said.seq
}

/// What a search finds: `(room, text)`, newest first.
async fn search(c: &mut Client, q: &str) -> Vec<(String, String)> {
    let found: Vec<Msg> = c.rich("search", &json!({ "q": q })).await.expect("search");
    found.into_iter().map(|m| (m.room, m.text)).collect()
}

fn texts(found: &[(String, String)]) -> Vec<&str> {
    found.iter().map(|(_, t)| t.as_str()).collect()
}

async fn search_suite(server: &TestServer) {
    let api = Api::of(server);
    let (ann_t, bob_t, cyd_t) = (
        api.signup("ann", PASSWORD).await.token(),
        api.signup("bob", PASSWORD).await.token(),
        api.signup("cyd", PASSWORD).await.token(),
    );
    let mut ann = signed_socket(server, &ann_t).await;
    let mut bob = signed_socket(server, &bob_t).await;
    let mut cyd = signed_socket(server, &cyd_t).await;

    say(&mut ann, "lobby", "Deployment of v2 finished", "a1").await;
    let lunch = say(&mut ann, "lobby", "lunch at noon?", "a2").await;
    say(&mut bob, "lobby", "we deploy again tomorrow", "b1").await;
    let plans: RoomState = ann
        .rich("create", &json!({"title": "Plans"}))
        .await
        .expect("create");
    say(&mut ann, &plans.room, "deploy keys are in the vault", "a3").await;
    let _: RoomState = ann
        .rich("join", &json!({"room": "hall"}))
        .await
        .expect("join");
    say(&mut ann, "hall", "deploy party in the hall", "a4").await;

    // The start of every word, newest first, in every room one may read.
    assert_eq!(
        texts(&search(&mut ann, "deplo").await),
        [
            "deploy party in the hall",
            "deploy keys are in the vault",
            "we deploy again tomorrow",
            "Deployment of v2 finished"
        ]
    );
    assert_eq!(
        texts(&search(&mut ann, "ploy").await),
        Vec::<&str>::new(),
        "starts of words only"
    );
    assert_eq!(
        texts(&search(&mut ann, "DEPLOY tomor").await),
        ["we deploy again tomorrow"],
        "every word, any case"
    );
    // Filters.
    assert_eq!(
        texts(&search(&mut ann, "deplo from:bob").await),
        ["we deploy again tomorrow"]
    );
    assert_eq!(
        texts(&search(&mut ann, "deplo in:#hall").await),
        ["deploy party in the hall"]
    );
    assert_eq!(search(&mut ann, "deplo after:2099-12-31").await, []);
    assert_eq!(search(&mut ann, "deplo before:2000-01-01").await, []);
    assert_eq!(search(&mut ann, "deplo before:2099-01-01").await.len(), 4);
    assert_eq!(
        texts(&search(&mut ann, "from:bob").await),
        ["we deploy again tomorrow"]
    );

    // A private room is searched by its members only.
    let outside = search(&mut cyd, "deplo").await;
    assert!(
        outside.iter().all(|(room, _)| room != &plans.room),
        "{outside:?}"
    );
    assert_eq!(outside.len(), 3);
    assert_eq!(
        search(&mut cyd, &format!("in:{} deplo", plans.room)).await,
        []
    );
    // A ban hides the room.
    let _: serde_json::Value = ann
        .rich("ban", &json!({"room": "hall", "user": "cyd"}))
        .await
        .expect("ban");
    assert_eq!(
        texts(&search(&mut cyd, "deplo").await),
        ["we deploy again tomorrow", "Deployment of v2 finished"]
    );

    // Edited: found by its new words only; deleted: not found.
    let _: Said = ann
        .rich(
            "edit",
            &json!({"room": "lobby", "seq": lunch, "text": "brunch at eleven?", "cid": "a5"}),
        )
        .await
        .expect("edit");
    assert_eq!(search(&mut bob, "lunch").await, []);
    assert_eq!(
        texts(&search(&mut bob, "brunch").await),
        ["brunch at eleven?"]
    );
    let _: Said = ann
        .rich(
            "delete",
            &json!({"room": "lobby", "seq": lunch, "cid": "a6"}),
        )
        .await
        .expect("delete");
    assert_eq!(search(&mut bob, "brunch").await, []);

    // Nonsense is refused with a reason.
    for bad in ["", "before:someday", "a b c d e f g h i"] {
        let refused = bob
            .rich::<Vec<Msg>>("search", &json!({ "q": bad }))
            .await
            .expect_err("refused");
        assert_eq!(refused.code, ErrorCode::BadRequest, "{bad:?}");
    }
}

#[tokio::test]
async fn search_finds_what_one_may_read_on_sqlite() {
    let dir = temp_dir("search");
    let store = server::sqlite::SqliteStore::open(
        &dir,
        server::sqlite::Retention {
            max_messages: 1_000,
            max_age: None,
        },
    )
    .expect("store");
    let server = TestServer::start_with_store(api_config(), Arc::new(store)).await;
    search_suite(&server).await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn search_finds_what_one_may_read_in_memory() {
    let server = TestServer::start(api_config()).await;
    search_suite(&server).await;
    server.stop().await;
}
