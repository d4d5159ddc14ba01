//! The chat layer: hello, join, leave, say, history, rooms, nick, typing,
//! presence; ordering, idempotence, nick rules and recovery.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::{Value, json};
use shared::chat::*;
use std::time::Duration;

async fn join(c: &mut Client, room: &str) -> RoomState {
    c.rich("join", &json!({"room": room})).await.expect("join")
}

async fn say(c: &mut Client, room: &str, text: &str, cid: &str) -> Result<Said, ErrorBody> {
    c.rich("say", &json!({"room": room, "text": text, "cid": cid}))
        .await
}

/// The next `msg` for `room` (skipping other rooms' messages).
async fn next_msg(c: &mut Client, room: &str) -> Msg {
    c.next_msg(room).await
}

#[tokio::test]
async fn hello_join_say_history_rooms_nick_typing_presence() {
    let server = TestServer::start(config()).await;
    let (mut ann, welcome) = rich_client(&server, "ann").await;
    assert_eq!(welcome.nick, "ann");
    assert_eq!(welcome.session.len(), 32);
    assert_eq!(welcome.rooms.len(), 1);
    assert_eq!(welcome.rooms[0].room, "lobby");
    assert!(welcome.rooms[0].members.contains(&"ann".to_string()));

    let state = join(&mut ann, "Rust").await;
    assert_eq!(state.room, "rust", "room names fold to lower case");
    assert_eq!(state.seq, 0);
    assert_eq!(state.members, vec!["ann".to_string()]);

    let (mut bob, _) = rich_client(&server, "bob").await;
    let state = join(&mut bob, "rust").await;
    assert_eq!(state.members, vec!["ann".to_string(), "bob".to_string()]);
    let p = loop {
        let p: Presence = ann.event_json("presence").await;
        if p.room == "rust" {
            break p;
        }
    };
    assert_eq!(
        (p.nick.as_str(), p.what, p.members),
        ("bob", PresenceKind::Join, 2)
    );

    let said = say(&mut ann, "rust", "hello <b>bob</b>", "c1")
        .await
        .expect("say");
    assert_eq!(said.seq, 1);
    let m = next_msg(&mut bob, "rust").await;
    assert_eq!(
        (m.seq, m.from.as_str(), m.text.as_str()),
        (1, "ann", "hello <b>bob</b>")
    );
    assert_eq!(m.cid.as_deref(), Some("c1"));
    assert_eq!(m.ts, said.ts);
    assert_eq!(m.epoch, state.epoch);

    for i in 2..=5 {
        say(&mut bob, "rust", &format!("m{i}"), &format!("b{i}"))
            .await
            .expect("say");
    }
    let older: Vec<Msg> = ann
        .rich("history", &json!({"room": "rust", "before": 5, "limit": 2}))
        .await
        .expect("history");
    assert_eq!(older.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
    let newest: Vec<Msg> = ann
        .rich(
            "history",
            &json!({"room": "rust", "before": u64::MAX, "limit": 100}),
        )
        .await
        .expect("history");
    assert_eq!(
        newest.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let none: Vec<Msg> = ann
        .rich(
            "history",
            &json!({"room": "rust", "before": 1, "limit": 10}),
        )
        .await
        .expect("history");
    assert!(none.is_empty());

    let rooms: Vec<RoomInfo> = ann.rich("rooms", &json!({})).await.expect("rooms");
    let rust = rooms
        .iter()
        .find(|r| r.room == "rust")
        .expect("rust listed");
    assert_eq!(rust.members, 2);
    assert!(rooms.iter().any(|r| r.room == "lobby"));

    let renamed: Nick = ann
        .rich("nick", &json!({"nick": "annie"}))
        .await
        .expect("nick");
    assert_eq!(renamed.nick, "annie");
    loop {
        let p: Presence = bob.event_json("presence").await;
        if p.what == PresenceKind::Rename && p.room == "rust" {
            assert_eq!((p.nick.as_str(), p.old.as_deref()), ("annie", Some("ann")));
            break;
        }
    }

    ann.notify(
        "typing",
        serde_json::to_vec(&json!({"room": "rust", "on": true})).expect("json"),
    )
    .await;
    let t: TypingOut = bob.event_json("typing").await;
    assert_eq!(
        (t.room.as_str(), t.nick.as_str(), t.on),
        ("rust", "annie", true)
    );

    let left: Empty = bob
        .rich("leave", &json!({"room": "rust"}))
        .await
        .expect("leave");
    assert_eq!(left, Empty {});
    loop {
        let p: Presence = ann.event_json("presence").await;
        if p.what == PresenceKind::Leave && p.room == "rust" {
            assert_eq!((p.nick.as_str(), p.members), ("bob", 1));
            break;
        }
    }
    let err = say(&mut bob, "rust", "still here?", "b9")
        .await
        .expect_err("left");
    assert_eq!(err.code, ErrorCode::NotJoined);
    server.stop().await;
}

#[tokio::test]
async fn fifty_says_arrive_in_order_with_contiguous_seq() {
    let server = TestServer::start(config()).await;
    let (mut ann, _) = rich_client(&server, "ann").await;
    let (mut bob, _) = rich_client(&server, "bob").await;
    join(&mut ann, "r").await;
    let start = join(&mut bob, "r").await.seq;
    // Pipelined: all 50 requests go out before any answer is read.
    let mut ids = Vec::new();
    for i in 0..50 {
        let body = serde_json::to_vec(
            &json!({"room": "r", "text": format!("n{i}"), "cid": format!("c{i}")}),
        )
        .expect("json");
        ids.push(ann.request("say", body).await);
    }
    for (i, id) in ids.into_iter().enumerate() {
        let said: Result<Said, ErrorBody> =
            parse_envelope(&ann.response(id).await).expect("envelope");
        assert_eq!(said.expect("stored").seq, start + 1 + i as u64);
    }
    for i in 0..50u64 {
        let m = next_msg(&mut bob, "r").await;
        assert_eq!(m.seq, start + 1 + i);
        assert_eq!(m.text, format!("n{i}"));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_retried_say_with_the_same_cid_is_stored_once() {
    let server = TestServer::start(config()).await;
    let (mut ann, _) = rich_client(&server, "ann").await;
    let (mut bob, _) = rich_client(&server, "bob").await;
    join(&mut ann, "r").await;
    join(&mut bob, "r").await;
    let first = say(&mut ann, "r", "once", "same").await.expect("say");
    let again = say(&mut ann, "r", "once", "same").await.expect("retry");
    assert_eq!(first, again, "the retry returns the original seq and ts");
    let other = say(&mut ann, "r", "twice", "different").await.expect("say");
    assert_eq!(other.seq, first.seq + 1);
    assert_eq!(next_msg(&mut bob, "r").await.seq, first.seq);
    assert_eq!(
        next_msg(&mut bob, "r").await.seq,
        other.seq,
        "the retry was not delivered again"
    );
    let all: Vec<Msg> = ann
        .rich(
            "history",
            &json!({"room": "r", "before": u64::MAX, "limit": 10}),
        )
        .await
        .expect("history");
    assert_eq!(all.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn taken_nicks_get_a_suffix_on_hello_and_an_error_on_nick() {
    let server = TestServer::start(config()).await;
    let (mut ann, _) = rich_client(&server, "ann").await;
    let (mut other, welcome) = rich_client(&server, "Ann").await;
    assert_eq!(welcome.nick, "Ann-2");
    let err = other
        .rich::<Nick>("nick", &json!({"nick": "ANN"}))
        .await
        .expect_err("taken");
    assert_eq!(err.code, ErrorCode::NickTaken);
    // Case changes of one's own nick are fine.
    let mine: Nick = ann
        .rich("nick", &json!({"nick": "ANN"}))
        .await
        .expect("own nick");
    assert_eq!(mine.nick, "ANN");
    // Once ann leaves, her nick stays hers for her session's lifetime:
    // nobody passes for her the moment she disconnects.
    ann.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = other
        .rich::<Nick>("nick", &json!({"nick": "ann"}))
        .await
        .expect_err("held for her session");
    assert_eq!(err.code, ErrorCode::NickTaken);
    server.stop().await;
}

#[tokio::test]
async fn a_disconnected_sessions_nick_is_free_once_the_session_expires() {
    let mut cfg = config();
    cfg.session_ttl_secs = 1;
    let server = TestServer::start(cfg).await;
    let (ann, _) = rich_client(&server, "ann").await;
    let (mut other, _) = rich_client(&server, "bob").await;
    ann.close().await;
    let left = std::time::Instant::now();
    let mut freed = false;
    for _ in 0..200 {
        if other
            .rich::<Nick>("nick", &json!({"nick": "ann"}))
            .await
            .is_ok()
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "an expired session's nick becomes free");
    assert!(
        left.elapsed() >= Duration::from_millis(900),
        "freed after {:?}, before the session expired",
        left.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn recovery_replays_exactly_the_missed_messages() {
    let server = TestServer::start(config()).await;
    let (mut ann, welcome) = rich_client(&server, "ann").await;
    let state = join(&mut ann, "r").await;
    let (mut bob, _) = rich_client(&server, "bob").await;
    join(&mut bob, "r").await;
    say(&mut bob, "r", "seen", "s0").await.expect("say");
    let seen = next_msg(&mut ann, "r").await;
    let cursor = Cursor {
        room: "r".into(),
        epoch: state.epoch.clone(),
        seq: seen.seq,
    };
    ann.close().await;
    for i in 1..=5 {
        say(&mut bob, "r", &format!("missed {i}"), &format!("m{i}"))
            .await
            .expect("say");
    }

    let mut back = server.client().await;
    let again: Welcome = back
        .rich(
            "hello",
            &json!({"v": 1, "session": welcome.session, "resume": [cursor]}),
        )
        .await
        .expect("hello again");
    assert_eq!(again.session, welcome.session);
    assert_eq!(again.nick, "ann", "the session keeps its nick");
    let r = again
        .rooms
        .iter()
        .find(|s| s.room == "r")
        .expect("room r is back");
    assert!(r.recovered);
    assert_eq!(
        r.history
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>(),
        ["missed 1", "missed 2", "missed 3", "missed 4", "missed 5"]
    );
    assert_eq!(r.seq, seen.seq + 5);

    // Nothing missed: recovered with an empty replay.
    let up_to_date = Cursor {
        room: "r".into(),
        epoch: state.epoch.clone(),
        seq: r.seq,
    };
    let s: RoomState = back
        .rich("join", &json!({"room": "r", "since": up_to_date}))
        .await
        .expect("join");
    assert!(s.recovered && s.history.is_empty());

    // An unknown epoch: not recovered, latest history instead.
    let stale = Cursor {
        room: "r".into(),
        epoch: "not-this-one".into(),
        seq: 2,
    };
    let s: RoomState = back
        .rich("join", &json!({"room": "r", "since": stale}))
        .await
        .expect("join");
    assert!(!s.recovered);
    assert_eq!(s.history.len(), 6);
    server.stop().await;
}

#[tokio::test]
async fn recovery_is_all_or_nothing_when_the_gap_is_no_longer_kept() {
    let mut cfg = config();
    cfg.history = 3;
    let server = TestServer::start(cfg).await;
    let (mut ann, _) = rich_client(&server, "ann").await;
    let state = join(&mut ann, "r").await;
    for i in 1..=6 {
        say(&mut ann, "r", &format!("t{i}"), &format!("c{i}"))
            .await
            .expect("say");
    }
    let cursor = Cursor {
        room: "r".into(),
        epoch: state.epoch,
        seq: 1,
    };
    let s: RoomState = ann
        .rich("join", &json!({"room": "r", "since": cursor}))
        .await
        .expect("join");
    assert!(!s.recovered, "messages 2 and 3 are gone: no partial replay");
    assert_eq!(
        s.history.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    server.stop().await;
}

#[tokio::test]
async fn seed_and_rich_clients_in_the_lobby_see_each_other() {
    let server = TestServer::start(config()).await;
    let mut seed = server.client().await;
    seed.call("myip", Bytes::new()).await;
    let (mut rich, _) = rich_client(&server, "rita").await;

    rich.rich::<Said>(
        "say",
        &json!({"room": "lobby", "text": "from rich", "cid": "x1"}),
    )
    .await
    .expect("say");
    assert_eq!(
        seed.event("message").await,
        Bytes::from_static(b"from rich")
    );

    assert_eq!(
        next_msg(&mut rich, "lobby").await.text,
        "from rich",
        "own message echoed"
    );
    seed.notify("broadcast", &b"from seed"[..]).await;
    let m = next_msg(&mut rich, "lobby").await;
    assert_eq!(m.text, "from seed");
    assert!(
        m.from.starts_with("guest-"),
        "seed clients post as their guest nick"
    );
    rich.assert_no_event_within(
        "message",
        Duration::from_millis(300),
        "rich clients get only msg, never the raw message",
    )
    .await;
    seed.assert_no_event_within(
        "msg",
        Duration::from_millis(300),
        "seed clients never get msg",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let mut cfg = config();
    cfg.max_text_chars = 10;
    cfg.max_rooms_per_connection = 2;
    let server = TestServer::start(cfg).await;
    let mut c = server.client().await;
    let before_hello = c
        .rich::<RoomState>("join", &json!({"room": "a"}))
        .await
        .expect_err("no hello");
    assert_eq!(before_hello.code, ErrorCode::BadRequest);
    let bad_version = c
        .rich::<Welcome>("hello", &json!({"v": 2}))
        .await
        .expect_err("v2");
    assert_eq!(bad_version.code, ErrorCode::BadRequest);
    let not_json = c.call("hello", &b"{nope"[..]).await;
    let parsed: Result<Value, ErrorBody> = parse_envelope(&not_json).expect("envelope");
    assert_eq!(parsed.expect_err("bad json").code, ErrorCode::BadRequest);
    c.rich::<Welcome>("hello", &json!({"v": 1, "nick": "carl"}))
        .await
        .expect("hello");
    let twice = c
        .rich::<Welcome>("hello", &json!({"v": 1}))
        .await
        .expect_err("twice");
    assert_eq!(twice.code, ErrorCode::BadRequest);

    let bad_room = c
        .rich::<RoomState>("join", &json!({"room": "no spaces"}))
        .await
        .expect_err("bad");
    assert_eq!(bad_room.code, ErrorCode::BadRequest);
    let long_room = c
        .rich::<RoomState>("join", &json!({"room": "x".repeat(40)}))
        .await
        .expect_err("long");
    assert_eq!(long_room.code, ErrorCode::TooLong);
    c.rich::<RoomState>("join", &json!({"room": "one"}))
        .await
        .expect("join");
    let full = c
        .rich::<RoomState>("join", &json!({"room": "two"}))
        .await
        .expect_err("limit");
    assert_eq!(
        full.code,
        ErrorCode::TooManyRooms,
        "lobby + one = two rooms"
    );
    let again = c
        .rich::<RoomState>("join", &json!({"room": "one"}))
        .await
        .expect("idempotent join");
    assert_eq!(again.room, "one");

    let not_joined = say(&mut c, "elsewhere", "hi", "1")
        .await
        .expect_err("not joined");
    assert_eq!(not_joined.code, ErrorCode::NotJoined);
    let too_long = say(&mut c, "one", "this is far too long", "2")
        .await
        .expect_err("long");
    assert_eq!(too_long.code, ErrorCode::TooLong);
    let blank = say(&mut c, "one", "   ", "3").await.expect_err("blank");
    assert_eq!(blank.code, ErrorCode::BadRequest);
    let no_cid = say(&mut c, "one", "hi", "").await.expect_err("empty cid");
    assert_eq!(no_cid.code, ErrorCode::BadRequest);
    let bad_nick = c
        .rich::<Nick>("nick", &json!({"nick": "   "}))
        .await
        .expect_err("blank nick");
    assert_eq!(bad_nick.code, ErrorCode::BadRequest);
    let history = c
        .rich::<Vec<Msg>>(
            "history",
            &json!({"room": "elsewhere", "before": 1, "limit": 1}),
        )
        .await
        .expect_err("not joined");
    assert_eq!(history.code, ErrorCode::NotJoined);
    // After all that, the connection still works.
    say(&mut c, "one", "fine", "4").await.expect("say");
    server.stop().await;
}

#[tokio::test]
async fn resuming_a_session_elsewhere_closes_the_old_connection() {
    let server = TestServer::start(config()).await;
    let (mut first, welcome) = rich_client(&server, "dora").await;
    let mut second = server.client().await;
    let w: Welcome = second
        .rich("hello", &json!({"v": 1, "session": welcome.session}))
        .await
        .expect("hello");
    assert_eq!(w.nick, "dora", "the nick moves with the session");
    match first.ended().await {
        End::Closed(code) => assert_eq!(code, 1008),
        other => panic!("expected 1008, got {other:?}"),
    }
    server.stop().await;
}
