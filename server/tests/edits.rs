//! Edits and deletes over the wire, on the default store (SQLite): each is
//! an entry of the room's sequence that members get as a `msg`; the log
//! refuses what is not the sender's to change; a guest's messages are its
//! session's, an account's are the account's from any session; a room's
//! owner deletes anyone's, and that is recorded; the original demo's
//! clients never see a change; a deleted message's text is gone from the
//! database files, not just hidden.

mod common;

use common::{
    Client, TestServer,
    api::{Api, PASSWORD, api_config},
    temp_dir,
};
use serde_json::json;
use shared::{
    chat::{Change, ErrorBody, ErrorCode, Msg, RoomState, Said, Welcome},
    rooms::ActionInfo,
};
use std::{sync::Arc, time::Duration};
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn on_disk() -> (std::path::PathBuf, Arc<server::sqlite::SqliteStore>) {
    let dir = temp_dir("edits");
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

async fn say(c: &mut Client, room: &str, text: &str, cid: &str) -> u64 {
    let said: Said = c
        .rich("say", &json!({"room": room, "text": text, "cid": cid}))
        .await
        .expect("say");
    said.seq
}

async fn edit(
    c: &mut Client,
    room: &str,
    seq: u64,
    text: &str,
    cid: &str,
) -> Result<u64, ErrorBody> {
    c.rich::<Said>(
        "edit",
        &json!({"room": room, "seq": seq, "text": text, "cid": cid}),
    )
    .await
    .map(|s| s.seq)
}

async fn delete(c: &mut Client, room: &str, seq: u64, cid: &str) -> Result<u64, ErrorBody> {
    c.rich::<Said>("delete", &json!({"room": room, "seq": seq, "cid": cid}))
        .await
        .map(|s| s.seq)
}

/// The next entry of `room` with a `seq` above `after`.
async fn next_after(c: &mut Client, room: &str, after: u64) -> Msg {
    loop {
        let m = c.next_msg(room).await;
        if m.seq > after {
            return m;
        }
    }
}

async fn hello_with(server: &TestServer, body: serde_json::Value) -> (Client, Welcome) {
    let mut c = server.client().await;
    let welcome: Welcome = c.rich("hello", &body).await.expect("hello");
    (c, welcome)
}

/// Every file of the data directory, as bytes.
fn data_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

fn holds(files: &[(String, Vec<u8>)], needle: &str) -> Vec<String> {
    files
        .iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(name, _)| name.clone())
        .collect()
}

#[tokio::test]
async fn guests_edit_and_delete_their_own_and_members_see_the_final_state() {
    let (dir, store) = on_disk();
    let server = TestServer::start_with_store(common::config(), store).await;
    let (mut ann, ann_welcome) = hello_with(&server, json!({"v": 1, "nick": "ann"})).await;
    let (mut bob, _) = hello_with(&server, json!({"v": 1, "nick": "bob"})).await;
    // A demo client in the lobby too.
    let mut demo = server.client().await;
    demo.call("myip", bytes::Bytes::new()).await;

    let first = say(&mut ann, "lobby", "helo wrld", "a1").await;
    let secret = say(&mut ann, "lobby", "the code is zebra-7731", "a2").await;
    assert_eq!(demo.event("message").await, "helo wrld".as_bytes());
    assert_eq!(
        demo.event("message").await,
        "the code is zebra-7731".as_bytes()
    );

    // Bob cannot change Ann's.
    let refused = edit(&mut bob, "lobby", first, "ann is wrong", "b1")
        .await
        .expect_err("not bob's");
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert_eq!(
        delete(&mut bob, "lobby", first, "b2")
            .await
            .expect_err("not bob's")
            .code,
        ErrorCode::Forbidden
    );

    // Ann edits and deletes; both are entries Bob gets in order.
    let edited = edit(&mut ann, "lobby", first, "hello world", "a3")
        .await
        .expect("edit");
    assert_eq!(
        edit(&mut ann, "lobby", first, "hello world", "a3")
            .await
            .expect("retry"),
        edited,
        "a retried edit is placed once"
    );
    let deleted = delete(&mut ann, "lobby", secret, "a4")
        .await
        .expect("delete");
    assert_eq!((edited, deleted), (secret + 1, secret + 2));
    let change = next_after(&mut bob, "lobby", secret).await;
    assert_eq!(
        (
            change.kind,
            change.of,
            change.text.as_str(),
            change.from.as_str()
        ),
        (Some(Change::Edit), Some(first), "hello world", "ann")
    );
    let gone = next_after(&mut bob, "lobby", edited).await;
    assert_eq!(
        (gone.kind, gone.of, gone.text.as_str()),
        (Some(Change::Delete), Some(secret), "")
    );
    // Nothing more for the demo client: a marker proves the order.
    say(&mut ann, "lobby", "marker", "a5").await;
    assert_eq!(
        demo.event("message").await,
        "marker".as_bytes(),
        "no edit or delete reached the demo client"
    );

    // Deleted is final.
    assert_eq!(
        edit(&mut ann, "lobby", secret, "again", "a6")
            .await
            .expect_err("deleted")
            .code,
        ErrorCode::BadRequest
    );
    assert_eq!(
        delete(&mut ann, "lobby", 9_999, "a7")
            .await
            .expect_err("no such message")
            .code,
        ErrorCode::BadRequest
    );

    // A history page shows the final state.
    let page: Vec<Msg> = bob
        .rich(
            "history",
            &json!({"room": "lobby", "before": deleted + 1, "limit": 50}),
        )
        .await
        .expect("history");
    let at = |seq: u64| {
        page.iter()
            .find(|m| m.seq == seq)
            .expect("in the page")
            .clone()
    };
    assert_eq!(
        (at(first).text.as_str(), at(first).changed),
        ("hello world", Some(edited))
    );
    assert_eq!((at(secret).text.as_str(), at(secret).deleted), ("", true));

    // The same guest session resumed on a new connection still owns them;
    // another guest (whatever name it gets) does not.
    let session = ann_welcome.session.clone();
    ann.close().await;
    let (mut again, welcome) =
        hello_with(&server, json!({"v": 1, "nick": "ann", "session": session})).await;
    assert_eq!(welcome.nick, "ann");
    edit(&mut again, "lobby", first, "hello, world", "a8")
        .await
        .expect("the session's own");
    again.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut imposter, _) = hello_with(&server, json!({"v": 1, "nick": "ann"})).await;
    assert_eq!(
        edit(&mut imposter, "lobby", first, "pwned", "i1")
            .await
            .expect_err("not the same guest")
            .code,
        ErrorCode::Forbidden
    );

    // The deleted text is in no file of the data directory.
    server.stop().await;
    let files = data_files(&dir);
    for word in ["zebra-7731", "zebra"] {
        assert_eq!(
            holds(&files, word),
            Vec::<String>::new(),
            "the deleted text ({word}) is gone from every file, its search index too"
        );
    }
    assert!(
        !holds(&files, "hello, world").is_empty(),
        "the files do hold what was kept (the search works)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

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

#[tokio::test]
async fn a_room_owner_deletes_anyones_message_and_it_is_recorded() {
    let (dir, store) = on_disk();
    let server = TestServer::start_with_store(api_config(), store).await;
    let api = Api::of(&server);
    let (ann_t, bob_t) = (
        api.signup("ann", PASSWORD).await.token(),
        api.signup("bob", PASSWORD).await.token(),
    );
    let mut ann = signed_socket(&server, &ann_t).await;
    let mut bob = signed_socket(&server, &bob_t).await;
    // Ann opens #mods: she owns it.
    let _: RoomState = ann
        .rich("join", &json!({"room": "mods"}))
        .await
        .expect("join");
    let _: RoomState = bob
        .rich("join", &json!({"room": "mods"}))
        .await
        .expect("join");
    let spam = say(&mut bob, "mods", "buy cheap watches", "b1").await;
    let mine = say(&mut ann, "mods", "welcome", "a1").await;

    // An account's messages are the account's, from another sign-in too.
    let bob_again_t = api.signin("bob", PASSWORD).await.token();
    let mut bob_again = signed_socket(&server, &bob_again_t).await;
    let _: RoomState = bob_again
        .rich("join", &json!({"room": "mods"}))
        .await
        .expect("join");
    edit(&mut bob_again, "mods", spam, "buy cheap watches!!", "b2")
        .await
        .expect("his own, from another sign-in");
    // Bob does not moderate: Ann's stays.
    assert_eq!(
        delete(&mut bob, "mods", mine, "b3")
            .await
            .expect_err("not his")
            .code,
        ErrorCode::Forbidden
    );
    // Ann may not edit Bob's (moderators delete, they do not edit).
    assert_eq!(
        edit(&mut ann, "mods", spam, "nice", "a2")
            .await
            .expect_err("not hers")
            .code,
        ErrorCode::Forbidden
    );
    let removed = delete(&mut ann, "mods", spam, "a3")
        .await
        .expect("the owner deletes");
    let seen = next_after(&mut bob, "mods", removed - 1).await;
    assert_eq!(
        (seen.kind, seen.of, seen.from.as_str()),
        (Some(Change::Delete), Some(spam), "ann")
    );
    // Her own delete of her own message is no moderation.
    delete(&mut ann, "mods", mine, "a4").await.expect("her own");
    let actions: Vec<ActionInfo> = ann
        .rich("actions", &json!({"room": "mods"}))
        .await
        .expect("actions");
    let deletes: Vec<(&str, &str)> = actions
        .iter()
        .filter(|a| a.what == "delete")
        .map(|a| (a.by.as_str(), a.whom.as_str()))
        .collect();
    assert_eq!(deletes, [("ann", "bob")]);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn messages_stored_before_edits_existed_can_be_edited() {
    // A database as the previous schema (1) left it.
    let dir = temp_dir("edits-migrate");
    {
        let db = rusqlite::Connection::open(dir.join("chat.db")).expect("db");
        db.execute_batch(
            "CREATE TABLE rooms (name TEXT PRIMARY KEY, epoch TEXT NOT NULL);
             CREATE TABLE messages (room TEXT NOT NULL, seq INTEGER NOT NULL, nick TEXT NOT NULL,
                 text TEXT NOT NULL, ts INTEGER NOT NULL, cid TEXT, session TEXT);
             CREATE UNIQUE INDEX messages_seq ON messages (room, seq);
             INSERT INTO rooms VALUES ('lobby', 'old-epoch');
             INSERT INTO messages VALUES ('lobby', 1, 'ann', 'from before', 1, 'c1', 'h');
             PRAGMA user_version = 1;",
        )
        .expect("old schema");
    }
    let store = server::sqlite::SqliteStore::open(
        &dir,
        server::sqlite::Retention {
            max_messages: 1_000,
            max_age: None,
        },
    )
    .expect("migrated");
    let server = TestServer::start_with_store(common::config(), Arc::new(store)).await;
    let (mut ann, welcome) = hello_with(&server, json!({"v": 1, "nick": "ann"})).await;
    let lobby = welcome
        .rooms
        .iter()
        .find(|r| r.room == "lobby")
        .expect("lobby");
    assert_eq!(lobby.history[0].text, "from before");
    // It has no recorded author: nobody may edit it, and asking is clean.
    assert_eq!(
        edit(&mut ann, "lobby", 1, "x", "e1")
            .await
            .expect_err("no author")
            .code,
        ErrorCode::Forbidden
    );
    let mine = say(&mut ann, "lobby", "new", "n1").await;
    assert_eq!(mine, 2, "the sequence goes on");
    edit(&mut ann, "lobby", mine, "newer", "e2")
        .await
        .expect("edited");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
