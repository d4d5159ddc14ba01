//! Cluster mode against a real `redis-server`: several server processes
//! (the real binary) share rooms.

mod common;

use common::{Binary, Client, Partition, Redis, WAIT};
use serde_json::json;
use shared::chat::{Msg, Presence, PresenceKind, RoomState, RoomStatus, Said, TypingOut, Welcome};
use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsStr,
    time::{Duration, Instant},
};

/// A server process in cluster mode; its dead peers are reaped after 2 s.
fn node(redis: &Redis) -> Binary {
    node_with(redis, &[])
}

fn node_with(redis: &Redis, more: &[&str]) -> Binary {
    let url = redis.url();
    let mut args = vec![
        OsStr::new("--redis"),
        OsStr::new(&url),
        OsStr::new("--node-ttl-secs"),
        OsStr::new("2"),
    ];
    args.extend(more.iter().map(OsStr::new));
    Binary::start(&args)
}

async fn hello(node: &Binary, body: serde_json::Value) -> (Client, Welcome) {
    let mut c = Client::connect(&node.url).await;
    let welcome: Welcome = c.rich("hello", &body).await.expect("hello");
    (c, welcome)
}

async fn join(c: &mut Client, room: &str) -> RoomState {
    c.rich("join", &json!({"room": room})).await.expect("join")
}

async fn say(c: &mut Client, room: &str, text: &str, cid: &str) -> Said {
    c.rich("say", &json!({"room": room, "text": text, "cid": cid}))
        .await
        .expect("say")
}

/// Reads `n` messages of `room`.
async fn collect(c: &mut Client, room: &str, n: usize) -> Vec<Msg> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(c.next_msg(room).await);
    }
    out
}

/// What a process's `/healthz` says of Redis: `ok` or `unreachable`.
fn redis_seen_by(node: &Binary) -> String {
    let health: serde_json::Value =
        serde_json::from_str(&node.http_get("/healthz")).expect("healthz json");
    health["cluster"]["redis"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Polls `/healthz` until the process says `want` of Redis.
async fn redis_becomes(node: &Binary, want: &str) {
    let deadline = Instant::now() + WAIT;
    while redis_seen_by(node) != want {
        assert!(Instant::now() < deadline, "redis never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls a `nick` change to `nick` until it is granted.
async fn nick_becomes_free(c: &mut Client, nick: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        match c
            .rich::<serde_json::Value>("nick", &json!({"nick": nick}))
            .await
        {
            Ok(_) => return,
            Err(e) => assert!(Instant::now() < deadline, "nick never freed: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `join` (idempotent) until the member list is `want`.
async fn members_become(c: &mut Client, room: &str, want: &[&str]) -> Vec<String> {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let state = join(c, room).await;
        if state.members == want || Instant::now() > deadline {
            return state.members;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn three_processes_one_order_one_member_list() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis), node(&redis)];
    let mut clients = Vec::new();
    for (i, nick) in ["ann", "bob", "cy"].into_iter().enumerate() {
        let (mut c, welcome) = hello(&nodes[i], json!({"v": 1, "nick": nick})).await;
        assert_eq!(welcome.nick, nick);
        join(&mut c, "room").await;
        clients.push(c);
    }

    // Everyone, on every process, sees the same members.
    for c in &mut clients {
        assert_eq!(
            members_become(c, "room", &["ann", "bob", "cy"]).await,
            ["ann", "bob", "cy"]
        );
    }

    // Every process lists every room, with its members across processes.
    let rooms: Vec<shared::chat::RoomInfo> =
        clients[2].rich("rooms", &json!({})).await.expect("rooms");
    assert!(
        rooms.iter().any(|r| r.room == "room" && r.members == 3),
        "{rooms:?}"
    );
    assert_eq!(redis_seen_by(&nodes[1]), "ok");
    let metrics = nodes[1].http_get("/metrics");
    assert!(metrics.lines().any(|l| l == "chat_redis_up 1"), "{metrics}");

    // Typing crosses processes.
    clients[0]
        .notify(
            "typing",
            serde_json::to_vec(&json!({"room": "room", "on": true})).expect("json"),
        )
        .await;
    let typing: TypingOut = clients[2].event_json("typing").await;
    assert_eq!((typing.nick.as_str(), typing.on), ("ann", true));

    // All three post at once; every client gets all 3 × 40 in one order.
    const EACH: usize = 40;
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut pending = Vec::new();
    for round in 0..EACH {
        for (i, c) in clients.iter_mut().enumerate() {
            let text = format!("c{i}-m{round}");
            let body = json!({"room": "room", "text": text, "cid": format!("{i}-{round}")});
            let id = c
                .request("say", serde_json::to_vec(&body).expect("json"))
                .await;
            pending.push((i, id, text));
        }
    }
    for (i, id, text) in pending {
        let answer = clients[i].response(id).await;
        let said: Said = shared::chat::parse_envelope(&answer)
            .expect("envelope")
            .expect("say is acknowledged");
        assert!(
            acked.insert(said.seq, text).is_none(),
            "two messages got one seq"
        );
    }
    let mut seen = Vec::new();
    for c in &mut clients {
        let msgs = collect(c, "room", 3 * EACH).await;
        let order: Vec<(u64, String)> = msgs.iter().map(|m| (m.seq, m.text.clone())).collect();
        seen.push(order);
    }
    let expected: Vec<(u64, String)> = acked.into_iter().collect();
    assert_eq!(expected.first().map(|e| e.0), Some(1));
    assert_eq!(
        expected.last().map(|e| e.0),
        Some(3 * EACH as u64),
        "seq has no gaps"
    );
    for order in &seen {
        assert_eq!(
            order, &expected,
            "same messages, same order, same seq everywhere"
        );
    }
    // Per author, in the order each one sent.
    for i in 0..3 {
        let mine: Vec<&String> = expected
            .iter()
            .map(|e| &e.1)
            .filter(|t| t.starts_with(&format!("c{i}-")))
            .collect();
        let sent: Vec<String> = (0..EACH).map(|r| format!("c{i}-m{r}")).collect();
        assert_eq!(mine, sent.iter().collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn nicknames_and_cids_hold_across_processes() {
    let redis = Redis::start();
    let ttl = ["--session-ttl-secs", "3"];
    let (a, b) = (node_with(&redis, &ttl), node_with(&redis, &ttl));
    let (mut ann, w1) = hello(&a, json!({"v": 1, "nick": "ann"})).await;
    assert_eq!(w1.nick, "ann");
    let (mut other, w2) = hello(&b, json!({"v": 1, "nick": "ANN"})).await;
    assert_eq!(
        w2.nick, "ANN-2",
        "nicknames are unique across processes, case-insensitively"
    );
    let taken = other
        .rich::<serde_json::Value>("nick", &json!({"nick": "ann"}))
        .await
        .expect_err("taken on the other process");
    assert_eq!(taken.code, shared::chat::ErrorCode::NickTaken);

    // A `say` retried on another process (same session, same cid) is stored once.
    join(&mut ann, "r").await;
    let first = say(&mut ann, "r", "once", "cid-1").await;
    ann.close().await;
    let (mut again, w3) = hello(&b, json!({"v": 1, "session": w1.session, "nick": "ann"})).await;
    assert_eq!(
        w3.session, w1.session,
        "the session resumes on another process"
    );
    assert_eq!(w3.nick, "ann", "and keeps its nickname");
    assert!(w3.rooms.iter().any(|r| r.room == "r"), "and its rooms");
    let retry = say(&mut again, "r", "once", "cid-1").await;
    assert_eq!(retry, first, "the retry gets the original seq");
    let next = say(&mut again, "r", "twice", "cid-2").await;
    assert_eq!(next.seq, first.seq + 1, "and was not stored again");

    // Once its holder leaves, the nickname stays the session's (nobody
    // can take it the moment its owner disconnects)…
    again.close().await;
    let left = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = other
        .rich::<serde_json::Value>("nick", &json!({"nick": "ann"}))
        .await
        .expect_err("held for the session");
    assert_eq!(held.code, shared::chat::ErrorCode::NickTaken);
    // …until the session expires (3 s here).
    nick_becomes_free(&mut other, "ann").await;
    assert!(
        left.elapsed() >= Duration::from_millis(2_500),
        "freed after {:?}, before the session expired",
        left.elapsed()
    );
}

#[tokio::test]
async fn a_killed_process_is_reaped_and_its_clients_recover_elsewhere() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis), node(&redis)];
    let (mut writer, _) = hello(&nodes[1], json!({"v": 1, "nick": "writer"})).await;
    join(&mut writer, "room").await;
    let (mut reader, welcome) = hello(&nodes[0], json!({"v": 1, "nick": "reader"})).await;
    let state = join(&mut reader, "room").await;
    let (mut ghost, _) = hello(&nodes[0], json!({"v": 1, "nick": "ghost"})).await;
    join(&mut ghost, "room").await;
    assert_eq!(
        members_become(&mut writer, "room", &["ghost", "reader", "writer"]).await,
        ["ghost", "reader", "writer"]
    );

    for i in 0..10 {
        say(
            &mut writer,
            "room",
            &format!("before-{i}"),
            &format!("b{i}"),
        )
        .await;
    }
    let got = collect(&mut reader, "room", 10).await;
    let cursor = got.last().expect("ten").clone();

    // The reader's process dies without a word.
    let killed = Instant::now();
    nodes[0].signal("-KILL");
    for i in 0..10 {
        say(&mut writer, "room", &format!("after-{i}"), &format!("a{i}")).await;
    }

    // Its clients reconnect to another process and get exactly what they missed.
    let (_reader2, back) = hello(
        &nodes[2],
        json!({"v": 1, "session": welcome.session, "resume": [
            {"room": "room", "epoch": cursor.epoch, "seq": cursor.seq}
        ]}),
    )
    .await;
    assert_eq!(back.nick, "reader");
    let room = back
        .rooms
        .iter()
        .find(|r| r.room == "room")
        .expect("room resumed");
    assert!(room.recovered, "recovered from the cursor");
    assert_eq!(room.epoch, state.epoch);
    let texts: Vec<&str> = room.history.iter().map(|m| m.text.as_str()).collect();
    let want: Vec<String> = (0..10).map(|i| format!("after-{i}")).collect();
    assert_eq!(texts, want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(room.seq, cursor.seq + 10);

    // The dead process's other member leaves everyone's list in bounded time
    // (heartbeat 2 s); the one that came back stays.
    // (If the reap came before the reader was back, the reader left and
    // rejoined; the list at the end is what counts.)
    loop {
        let p: Presence = writer.event_json("presence").await;
        if p.what == PresenceKind::Leave && p.nick == "ghost" {
            break;
        }
    }
    // Counted from the kill: within the TTL (2 s) plus a check period
    // (1 s), with room for a busy machine (seen here: 2.0 s).
    let reaped = killed.elapsed();
    eprintln!("[cluster] ghost reaped {reaped:?} after the kill");
    assert!(
        reaped < Duration::from_secs(10),
        "reaped within the heartbeat bound ({reaped:?} after the kill)"
    );
    assert_eq!(
        members_become(&mut writer, "room", &["reader", "writer"]).await,
        ["reader", "writer"]
    );
}

#[tokio::test]
async fn a_process_started_later_serves_the_existing_history() {
    let redis = Redis::start();
    let first = node(&redis);
    let (mut ann, _) = hello(&first, json!({"v": 1, "nick": "ann"})).await;
    join(&mut ann, "old").await;
    for i in 1..=80 {
        say(&mut ann, "old", &format!("m{i}"), &format!("c{i}")).await;
    }
    let late = node(&redis);
    let (mut bob, _) = hello(&late, json!({"v": 1, "nick": "bob"})).await;
    let state = join(&mut bob, "old").await;
    assert_eq!(state.seq, 80);
    assert_eq!(state.history.len(), 50);
    assert_eq!(state.history.first().map(|m| m.seq), Some(31));
    assert_eq!(state.history.last().map(|m| m.text.as_str()), Some("m80"));
    let page: Vec<Msg> = bob
        .rich("history", &json!({"room": "old", "before": 11, "limit": 5}))
        .await
        .expect("history");
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [6, 7, 8, 9, 10]
    );
    // And new messages from the first process reach it.
    say(&mut ann, "old", "fresh", "c-fresh").await;
    assert_eq!(bob.next_msg("old").await.text, "fresh");
}

#[tokio::test]
async fn redis_restarted_mid_traffic_loses_nothing_acknowledged() {
    let mut redis = Redis::start();
    let (a, b) = (node(&redis), node(&redis));
    let (mut writer, _) = hello(&a, json!({"v": 1, "nick": "writer"})).await;
    join(&mut writer, "busy").await;
    let (mut reader, _) = hello(&b, json!({"v": 1, "nick": "reader"})).await;
    join(&mut reader, "busy").await;

    // The writer posts 300 messages, retrying each (same cid) until acknowledged.
    const TOTAL: usize = 300;
    let writing = tokio::spawn(async move {
        let mut acked: BTreeMap<u64, String> = BTreeMap::new();
        let mut refusals = Vec::new();
        for i in 0..TOTAL {
            let text = format!("msg-{i}");
            loop {
                let asked = Instant::now();
                match writer
                    .rich::<Said>(
                        "say",
                        &json!({"room": "busy", "text": text, "cid": format!("c{i}")}),
                    )
                    .await
                {
                    Ok(said) => {
                        assert!(
                            acked.insert(said.seq, text.clone()).is_none(),
                            "one seq per message"
                        );
                        break;
                    }
                    Err(e) => {
                        assert_eq!(e.code, shared::chat::ErrorCode::Unavailable, "{e:?}");
                        refusals.push(asked.elapsed());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (acked, refusals, writer)
    });

    let (leaver, leaver_welcome) = hello(&a, json!({"v": 1, "nick": "leaver"})).await;
    let leaver_session = leaver_welcome.session;

    // Restart Redis while that runs; somebody leaves meanwhile.
    // The outage outlasts the heartbeat TTL (2 s): every node's key
    // expires, and nobody may be reaped for it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    leaver.close().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart();

    let (acked, refusals, mut writer) = tokio::time::timeout(Duration::from_secs(60), writing)
        .await
        .expect("the writer finishes")
        .expect("writer task");
    assert!(!refusals.is_empty(), "the outage was noticed");
    let slowest = refusals.iter().max().copied().unwrap_or_default();
    // A say is refused at once while the health check knows Redis is away,
    // and within one call timeout (1 s) in the half second before it does;
    // 3 s leaves room for a busy machine (seen here: 0.1 s).
    eprintln!("[cluster] slowest refusal during the outage: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(3),
        "say answers unavailable quickly (slowest {slowest:?})"
    );
    assert_eq!(acked.len(), TOTAL);

    // The reader got every acknowledged message, once, in seq order, no gap.
    let mut got: Vec<Msg> = Vec::new();
    let mut statuses = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < TOTAL && Instant::now() < deadline {
        let frame = reader
            .next_matching(|f| matches!(f, shared::Frame::Notify { name, .. } if name == "msg" || name == "room_status"))
            .await;
        if let shared::Frame::Notify { name, payload } = frame {
            if name == "msg" {
                got.push(serde_json::from_slice(&payload).expect("msg"));
            } else {
                let s: RoomStatus = serde_json::from_slice(&payload).expect("status");
                statuses.insert(format!("{:?}", s.state));
            }
        }
    }
    let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
    let want: Vec<u64> = (1..=TOTAL as u64).collect();
    assert_eq!(
        seqs, want,
        "every message, in order, without gaps or duplicates"
    );
    for m in &got {
        assert_eq!(
            acked.get(&m.seq),
            Some(&m.text),
            "what was acknowledged is what arrived"
        );
    }
    assert!(
        statuses.contains("Degraded") && statuses.contains("Ok"),
        "members were told: {statuses:?}"
    );

    // Nobody was reaped: both are still members and keep their nicknames.
    assert_eq!(
        members_become(&mut reader, "busy", &["reader", "writer"]).await,
        ["reader", "writer"]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        members_become(&mut reader, "busy", &["reader", "writer"]).await,
        ["reader", "writer"]
    );
    let (mut third, w) = hello(&b, json!({"v": 1, "nick": "writer"})).await;
    assert_eq!(w.nick, "writer-2", "the writer's nickname is still held");
    let taken = third
        .rich::<serde_json::Value>("nick", &json!({"nick": "writer"}))
        .await
        .expect_err("held");
    assert_eq!(taken.code, shared::chat::ErrorCode::NickTaken);

    // The outage shows in /metrics.
    let metrics = a.http_get("/metrics");
    let errors = metrics
        .lines()
        .find_map(|l| l.strip_prefix("chat_redis_errors_total "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(errors.is_some_and(|e| e > 0.0), "{metrics}");

    // The nickname of the session that left while Redis was away is held
    // for that session: nobody else gets it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = reader
        .rich::<serde_json::Value>("nick", &json!({"nick": "leaver"}))
        .await
        .expect_err("held for the session that left");
    assert_eq!(held.code, shared::chat::ErrorCode::NickTaken);
    let (_back, w) = hello(
        &b,
        json!({"v": 1, "session": leaver_session, "nick": "leaver"}),
    )
    .await;
    assert_eq!(
        w.nick, "leaver",
        "its session gets it back on another process"
    );

    // Delivery goes on after the restart.
    let said = say(&mut writer, "busy", "after", "c-after").await;
    assert_eq!(said.seq, TOTAL as u64 + 1);
    assert_eq!(reader.next_msg("busy").await.text, "after");
}

#[tokio::test]
async fn a_session_resumed_on_another_process_closes_the_old_connection() {
    let redis = Redis::start();
    let (a, b) = (node(&redis), node(&redis));
    let (mut first, welcome) = hello(&a, json!({"v": 1, "nick": "tab"})).await;
    // The session reaches Redis just after the welcome (its save is
    // queued): resume on the other process once it is there, as a person
    // reloading onto another process would (a busy machine made this race).
    let key = format!(
        "chat:session:{}",
        server::identity::token_hash(&welcome.session)
    );
    let deadline = Instant::now() + WAIT;
    while redis_cli(&redis, &["GET", &key])
        .first()
        .is_none_or(|saved| saved.is_empty())
    {
        assert!(Instant::now() < deadline, "the session was never saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_second, again) = hello(&b, json!({"v": 1, "session": welcome.session})).await;
    assert_eq!(
        (again.session.as_str(), again.nick.as_str()),
        (welcome.session.as_str(), "tab")
    );
    let end = first.ended().await;
    assert!(
        matches!(end, common::End::Closed(1008)),
        "the old connection is closed as on one process: {end:?}"
    );
}

#[tokio::test]
async fn a_process_started_before_redis_works_once_it_is_up() {
    let mut redis = Redis::unstarted();
    let early = node(&redis);
    assert_eq!(redis_seen_by(&early), "unreachable");
    let mut c = Client::connect(&early.url).await;
    let asked = Instant::now();
    let refused = c
        .rich::<Welcome>("hello", &json!({"v": 1, "nick": "early"}))
        .await
        .expect_err("no rooms without redis");
    assert_eq!(refused.code, shared::chat::ErrorCode::Unavailable);
    // Refused within the Redis connection timeout (0.5 s) plus one call
    // timeout (1 s) at most, not after retrying for as long as Redis is
    // away; 3 s leaves room for a busy machine (seen here: 0.6 s).
    let took = asked.elapsed();
    eprintln!("[cluster] hello refused after {took:?}");
    assert!(took < Duration::from_secs(3), "refused quickly ({took:?})");

    redis.restart();
    let deadline = Instant::now() + WAIT;
    let welcome = loop {
        match c
            .rich::<Welcome>("hello", &json!({"v": 1, "nick": "early"}))
            .await
        {
            Ok(w) => break w,
            Err(e) => assert!(Instant::now() < deadline, "never recovered: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(welcome.nick, "early");
    assert!(welcome.rooms.iter().any(|r| r.room == "lobby"));
}

#[tokio::test]
async fn recovery_reaches_past_a_process_cache_into_the_stream() {
    let redis = Redis::start();
    let url = redis.url();
    // This process caches only 5 messages per room.
    let small = Binary::start(&[
        OsStr::new("--redis"),
        OsStr::new(&url),
        OsStr::new("--history"),
        OsStr::new("5"),
    ]);
    let other = node(&redis);
    let (mut writer, _) = hello(&other, json!({"v": 1, "nick": "writer"})).await;
    let state = join(&mut writer, "deep").await;
    say(&mut writer, "deep", "seen", "c0").await;
    for i in 1..=30 {
        say(
            &mut writer,
            "deep",
            &format!("missed-{i}"),
            &format!("c{i}"),
        )
        .await;
    }
    let (mut late, _) = hello(&small, json!({"v": 1, "nick": "late"})).await;
    let back: RoomState = late
        .rich(
            "join",
            &json!({"room": "deep", "since": {"room": "deep", "epoch": state.epoch, "seq": 1}}),
        )
        .await
        .expect("join");
    assert!(back.recovered, "the gap is in the stream");
    let texts: Vec<String> = back.history.iter().map(|m| m.text.clone()).collect();
    let want: Vec<String> = (1..=30).map(|i| format!("missed-{i}")).collect();
    assert_eq!(texts, want);
    assert_eq!(back.seq, 31);
    // Scrollback past the cache comes from the stream too.
    let page: Vec<Msg> = late
        .rich(
            "history",
            &json!({"room": "deep", "before": 12, "limit": 4}),
        )
        .await
        .expect("history");
    let texts: Vec<&str> = page.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["missed-7", "missed-8", "missed-9", "missed-10"]);
}

#[tokio::test]
async fn messages_older_than_the_retention_age_leave_redis_and_every_cache() {
    let redis = Redis::start();
    let url = redis.url();
    // 0.0001 days: 8.64 s.
    let aging = || {
        Binary::start(&[
            OsStr::new("--redis"),
            OsStr::new(&url),
            OsStr::new("--retention-days"),
            OsStr::new("0.0001"),
        ])
    };
    let (first, second) = (aging(), aging());
    let (mut ann, _) = hello(&first, json!({"v": 1, "nick": "ann"})).await;
    let (mut bob, _) = hello(&second, json!({"v": 1, "nick": "bob"})).await;
    let state = join(&mut ann, "aging").await;
    join(&mut bob, "aging").await;
    for i in 1..=3 {
        say(&mut ann, "aging", &format!("old-{i}"), &format!("c{i}")).await;
    }
    assert_eq!(collect(&mut bob, "aging", 3).await.len(), 3);

    // Both processes' caches forget them once they are older than the age.
    let deadline = Instant::now() + Duration::from_secs(30);
    for c in [&mut ann, &mut bob] {
        loop {
            let history = join(c, "aging").await.history;
            if history.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "still served: {history:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Scrollback, which reads the stream past the cache, soon has none of
    // them either (one process sweeps the streams every second here).
    loop {
        let page: Vec<Msg> = bob
            .rich(
                "history",
                &json!({"room": "aging", "before": 4, "limit": 10}),
            )
            .await
            .expect("history");
        if page.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the stream still has {page:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // `seq` continues; a process started now reads an expired stream.
    let said = say(&mut ann, "aging", "new", "c-new").await;
    assert_eq!(said.seq, 4);
    assert_eq!(bob.next_msg("aging").await.text, "new");
    let third = aging();
    let (mut cy, _) = hello(&third, json!({"v": 1, "nick": "cy"})).await;
    let fresh = join(&mut cy, "aging").await;
    let texts: Vec<&str> = fresh.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!((fresh.seq, texts), (4, vec!["new"]));

    // A client that missed the expired messages cannot recover them; one
    // that saw them recovers the rest.
    for (seen, recovered) in [(1, false), (3, true)] {
        let cursor = json!({"room": "aging", "epoch": state.epoch, "seq": seen});
        let back: RoomState = cy
            .rich("join", &json!({"room": "aging", "since": cursor}))
            .await
            .expect("join");
        let texts: Vec<&str> = back.history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            (back.recovered, texts),
            (recovered, vec!["new"]),
            "since {seen}"
        );
    }
}

/// Runs the binary expecting it to refuse to start; returns what it said.
fn refused(args: &[&OsStr]) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success(), "refuses to start with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn processes_share_rooms_through_redis_over_tls() {
    let redis = Redis::start_tls();
    let url = redis.url();
    assert!(url.starts_with("rediss://"));
    let (ca, cert, key) = (
        redis.file("ca.crt"),
        redis.file("client.crt"),
        redis.file("client.key"),
    );
    let tls_node = || {
        Binary::start(&[
            OsStr::new("--redis"),
            OsStr::new(&url),
            OsStr::new("--redis-ca"),
            ca.as_os_str(),
            OsStr::new("--redis-cert"),
            cert.as_os_str(),
            OsStr::new("--redis-key"),
            key.as_os_str(),
        ])
    };
    let (first, second) = (tls_node(), tls_node());
    let (mut ann, _) = hello(&first, json!({"v": 1, "nick": "ann"})).await;
    let (mut bob, _) = hello(&second, json!({"v": 1, "nick": "bob"})).await;
    join(&mut ann, "secure").await;
    join(&mut bob, "secure").await;
    let said = say(&mut ann, "secure", "over tls", "t1").await;
    let got = bob.next_msg("secure").await;
    assert_eq!((got.seq, got.text.as_str()), (said.seq, "over tls"));
    assert_eq!(redis_seen_by(&second), "ok");

    // Without our authority the server's certificate is not trusted, and
    // without a client certificate Redis hangs up: either way, unreachable.
    for args in [
        vec![
            OsStr::new("--redis-cert"),
            cert.as_os_str(),
            OsStr::new("--redis-key"),
            key.as_os_str(),
        ],
        vec![OsStr::new("--redis-ca"), ca.as_os_str()],
    ] {
        let mut all = vec![OsStr::new("--redis"), OsStr::new(&url)];
        all.extend(args);
        let untrusting = Binary::start(&all);
        assert_eq!(redis_seen_by(&untrusting), "unreachable", "{all:?}");
    }

    // Bad TLS settings stop start-up with a clear message.
    let missing = redis.file("missing.pem");
    let stderr = refused(&[
        OsStr::new("--redis"),
        OsStr::new(&url),
        OsStr::new("--redis-ca"),
        missing.as_os_str(),
    ]);
    assert!(
        stderr.contains("cannot read --redis-ca") && stderr.contains("missing.pem"),
        "{stderr}"
    );
    let plain = format!("redis://127.0.0.1:{}/0", redis.port);
    let stderr = refused(&[
        OsStr::new("--redis"),
        OsStr::new(&plain),
        OsStr::new("--redis-ca"),
        ca.as_os_str(),
    ]);
    assert!(stderr.contains("need a rediss:// URL"), "{stderr}");
    let stderr = refused(&[
        OsStr::new("--redis"),
        OsStr::new(&url),
        OsStr::new("--redis-cert"),
        cert.as_os_str(),
    ]);
    assert!(stderr.contains("--redis-key"), "{stderr}");
}

/// The next `event` Notify whose JSON payload passes `want`.
async fn next_event<T: serde::de::DeserializeOwned>(
    c: &mut Client,
    event: &str,
    want: impl Fn(&T) -> bool,
) -> T {
    let frame = c
        .next_matching(|f| match f {
            shared::Frame::Notify { name, payload } if name == event => {
                serde_json::from_slice::<T>(payload).is_ok_and(|v| want(&v))
            }
            _ => false,
        })
        .await;
    match frame {
        shared::Frame::Notify { payload, .. } => serde_json::from_slice(&payload).expect("json"),
        _ => unreachable!("picked a notify"),
    }
}

/// The next `presence` event of `room` about `nick` doing `what`.
async fn presence_of(c: &mut Client, room: &str, nick: &str, what: PresenceKind) -> Presence {
    next_event(c, "presence", |p: &Presence| {
        p.room == room && p.nick == nick && p.what == what
    })
    .await
}

/// The next `room_status` of `room`.
async fn status_of(c: &mut Client, room: &str) -> shared::chat::Health {
    next_event(c, "room_status", |s: &RoomStatus| s.room == room)
        .await
        .state
}

#[tokio::test]
async fn a_process_cut_off_from_redis_is_reaped_then_rejoins_and_catches_up() {
    let redis = Redis::start();
    let partition = Partition::to(redis.port).await;
    let healthy = node(&redis);
    let url = partition.url();
    let cut_off = Binary::start(&[
        OsStr::new("--redis"),
        OsStr::new(&url),
        OsStr::new("--node-ttl-secs"),
        OsStr::new("2"),
    ]);
    let (mut ann, _) = hello(&healthy, json!({"v": 1, "nick": "ann"})).await;
    let (mut bob, _) = hello(&cut_off, json!({"v": 1, "nick": "bob"})).await;
    join(&mut ann, "part").await;
    join(&mut bob, "part").await;
    assert_eq!(
        members_become(&mut ann, "part", &["ann", "bob"]).await,
        ["ann", "bob"]
    );
    let first = say(&mut ann, "part", "before", "p0").await;
    assert_eq!(bob.next_msg("part").await.seq, first.seq);

    // Cut bob's process off. Its room is degraded there; the other process
    // sees it stop and removes bob from the room.
    partition.cut();
    assert_eq!(
        status_of(&mut bob, "part").await,
        shared::chat::Health::Degraded
    );
    presence_of(&mut ann, "part", "bob", PresenceKind::Leave).await;
    let refused = bob
        .rich::<Said>("say", &json!({"room": "part", "text": "no", "cid": "b0"}))
        .await
        .expect_err("refused while cut off");
    assert_eq!(refused.code, shared::chat::ErrorCode::Unavailable);
    let mut during = Vec::new();
    for i in 1..=5 {
        during.push(
            say(&mut ann, "part", &format!("during-{i}"), &format!("p{i}"))
                .await
                .seq,
        );
    }

    // Back: bob's process puts bob back in the room and delivers what it
    // missed, in order, after what it had.
    partition.restore();
    assert_eq!(status_of(&mut bob, "part").await, shared::chat::Health::Ok);
    let missed: Vec<u64> = collect(&mut bob, "part", 5)
        .await
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(missed, during);
    presence_of(&mut ann, "part", "bob", PresenceKind::Join).await;
    assert_eq!(
        members_become(&mut ann, "part", &["ann", "bob"]).await,
        ["ann", "bob"]
    );
    let after = say(&mut bob, "part", "back", "b1").await;
    assert_eq!(after.seq, during[4] + 1);
    // (ann also gets her own messages first.)
    while ann.next_msg("part").await.seq != after.seq {}
    // And bob's nick is bob's again: nobody else can take it.
    let mut other = Client::connect(&healthy.url).await;
    let welcome: Welcome = other
        .rich("hello", &json!({"v": 1, "nick": "bob"}))
        .await
        .expect("hello");
    assert_ne!(welcome.nick, "bob");
}

#[tokio::test]
async fn a_session_changed_while_redis_is_away_resumes_as_it_was_left() {
    let mut redis = Redis::start();
    let (a, b) = (node(&redis), node(&redis));
    let (mut bob, welcome) = hello(&a, json!({"v": 1, "nick": "bob"})).await;
    join(&mut bob, "kept").await;
    join(&mut bob, "left").await;
    join(&mut bob, "late").await;

    // Redis goes away (perhaps before the last join's save reached it);
    // meanwhile bob leaves a room, then goes.
    redis.kill();
    redis_becomes(&a, "unreachable").await;
    let _: serde_json::Value = bob
        .rich("leave", &json!({"room": "left"}))
        .await
        .expect("leave");
    bob.close().await;
    redis.restart();
    redis_becomes(&a, "ok").await;

    // Its saves waited for Redis and reach it now (kept under the token's
    // hash): wait for that, then resume on the other process, where the
    // session is as bob left it.
    let key = format!(
        "chat:session:{}",
        server::identity::token_hash(&welcome.session)
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let saved = redis_cli(&redis, &["GET", &key]);
        let rooms = saved
            .first()
            .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
            .map(|v| v["rooms"].clone());
        let mut rooms: Vec<String> = rooms
            .and_then(|r| serde_json::from_value(r).ok())
            .unwrap_or_default();
        rooms.sort_unstable();
        if rooms == ["kept", "late", "lobby"] {
            break;
        }
        assert!(Instant::now() < deadline, "saved: {saved:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_again, back) = hello(&b, json!({"v": 1, "session": welcome.session})).await;
    let mut rooms: Vec<&str> = back.rooms.iter().map(|r| r.room.as_str()).collect();
    rooms.sort_unstable();
    assert_eq!(back.nick, "bob");
    assert_eq!(rooms, ["kept", "late", "lobby"]);
}

#[tokio::test]
async fn after_an_outage_a_process_that_reconnects_late_is_not_reaped() {
    let mut redis = Redis::start();
    let partition = Partition::to(redis.port).await;
    // A 4 s TTL: the late process reconnects well within its grace.
    let with_ttl = |url: &str| {
        Binary::start(&[
            OsStr::new("--redis"),
            OsStr::new(url),
            OsStr::new("--node-ttl-secs"),
            OsStr::new("4"),
        ])
    };
    let prompt = with_ttl(&redis.url());
    let late = with_ttl(&partition.url());
    let (mut ann, _) = hello(&prompt, json!({"v": 1, "nick": "ann"})).await;
    let (mut bob, _) = hello(&late, json!({"v": 1, "nick": "bob"})).await;
    join(&mut ann, "grace").await;
    join(&mut bob, "grace").await;
    assert_eq!(
        members_become(&mut ann, "grace", &["ann", "bob"]).await,
        ["ann", "bob"]
    );

    // Redis is down longer than the heartbeat TTL, so every heartbeat
    // expires. When it is back, one process reconnects at once and the
    // other a second later: the first must not take the second for dead.
    partition.cut();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    redis.restart();
    redis_becomes(&prompt, "ok").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    partition.restore();
    redis_becomes(&late, "ok").await;
    // Past the grace period: nobody ever saw bob leave.
    let left = tokio::time::timeout(
        Duration::from_secs(5),
        presence_of(&mut ann, "grace", "bob", PresenceKind::Leave),
    )
    .await;
    assert!(left.is_err(), "bob was reaped: {left:?}");
    assert_eq!(
        members_become(&mut ann, "grace", &["ann", "bob"]).await,
        ["ann", "bob"]
    );
}

/// `redis-cli` against the test's Redis: its output, one item a line.
fn redis_cli(redis: &Redis, args: &[&str]) -> Vec<String> {
    redis
        .cli(args)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

async fn rooms_listed(c: &mut Client) -> Vec<String> {
    let rooms: Vec<shared::chat::RoomInfo> = c.rich("rooms", &json!({})).await.expect("rooms");
    rooms.into_iter().map(|r| r.room).collect()
}

#[tokio::test]
async fn rooms_everyone_left_leave_the_cluster_and_no_token_reaches_redis() {
    let redis = Redis::start();
    let (a, b) = (node(&redis), node(&redis));
    let (mut ann, w) = hello(&a, json!({"v": 1, "nick": "ann"})).await;
    join(&mut ann, "brief").await;
    say(&mut ann, "brief", "hi", "c1").await;
    let (mut bob, _) = hello(&b, json!({"v": 1, "nick": "bob"})).await;
    assert!(rooms_listed(&mut bob).await.contains(&"brief".to_owned()));
    assert!(redis_cli(&redis, &["SMEMBERS", "chat:{:global}:rooms"]).contains(&"brief".to_owned()));

    // Its last member leaves: it closes, and leaves the cluster's list.
    let _: serde_json::Value = ann
        .rich("leave", &json!({"room": "brief"}))
        .await
        .expect("leave");
    let deadline = Instant::now() + WAIT;
    while rooms_listed(&mut bob).await.contains(&"brief".to_owned()) {
        assert!(Instant::now() < deadline, "the room stayed listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !redis_cli(&redis, &["SMEMBERS", "chat:{:global}:rooms"]).contains(&"brief".to_owned())
    );
    // Its history stays: joining again recovers it.
    let state = join(&mut bob, "brief").await;
    assert_eq!(state.seq, 1, "history kept");

    // A cursor for a room that never existed creates nothing.
    let (_c, ghostly) = hello(
        &a,
        json!({"v": 1, "resume": [{"room": "ghost", "epoch": "0000000000000000", "seq": 3}]}),
    )
    .await;
    assert!(ghostly.rooms.iter().all(|r| r.room != "ghost"));
    assert_eq!(
        redis_cli(&redis, &["EXISTS", "chat:{ghost}:epoch"]),
        ["0"],
        "no room made in Redis"
    );

    // The session token is in no key name and no value Redis holds.
    ann.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keys = redis_cli(&redis, &["--scan"]);
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(!key.contains(&w.session), "key {key} names the token");
        let kind = redis_cli(&redis, &["TYPE", key]);
        let values = match kind.first().map(String::as_str) {
            Some("string") => redis_cli(&redis, &["GET", key]),
            Some("hash") => redis_cli(&redis, &["HGETALL", key]),
            Some("set") => redis_cli(&redis, &["SMEMBERS", key]),
            Some("stream") => redis_cli(&redis, &["XRANGE", key, "-", "+"]),
            _ => Vec::new(),
        };
        assert!(
            values.iter().all(|v| !v.contains(&w.session)),
            "{key} holds the token"
        );
    }
}

/// Acknowledged means stored durably: a Redis that does not fsync every
/// write (`appendfsync everysec`, or no append-only file at all) can lose
/// what it acknowledged in a crash, so the server will not start on it
/// unless told that is intended.
#[tokio::test]
async fn a_redis_that_does_not_fsync_every_write_is_refused_unless_allowed() {
    for (settings, reason) in [
        (["--appendfsync", "everysec"], "appendfsync is \"everysec\""),
        (["--appendonly", "no"], "appendonly is \"no\""),
    ] {
        let redis = Redis::start_with(&settings);
        let url = redis.url();
        let said = refused(&[OsStr::new("--redis"), OsStr::new(&url)]);
        assert!(said.contains(reason), "{settings:?}: {said}");
        assert!(
            said.contains("--redis-allow-lossy"),
            "says how to allow it: {said}"
        );
    }

    // Told it is intended: it starts, says so in its log, and chats.
    let redis = Redis::start_with(&["--appendfsync", "everysec"]);
    let url = redis.url();
    let log = common::temp_dir("lossy").join("server.log");
    let node = Binary::start_logging(
        &[
            OsStr::new("--redis"),
            OsStr::new(&url),
            OsStr::new("--redis-allow-lossy"),
        ],
        &log,
    );
    redis_becomes(&node, "ok").await;
    let (mut c, _) = hello(&node, json!({"v": 1, "nick": "lossy"})).await;
    join(&mut c, "lossy").await;
    assert_eq!(say(&mut c, "lossy", "allowed", "l1").await.seq, 1);
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains("redis does not fsync every write") && logged.contains("everysec"),
        "warned: {logged}"
    );
}

/// A Redis reconfigured at run time to fsync once a second is refused
/// like one that is unreachable: rooms go degraded and `say` answers
/// `unavailable` (nothing is acknowledged that a crash could take back),
/// until it fsyncs every write again.
#[tokio::test]
async fn a_redis_that_stops_fsyncing_every_write_is_not_written_to() {
    let redis = Redis::start();
    let node = node(&redis);
    let (mut c, _) = hello(&node, json!({"v": 1, "nick": "careful"})).await;
    join(&mut c, "fsync").await;
    assert_eq!(say(&mut c, "fsync", "before", "f1").await.seq, 1);

    assert_eq!(
        redis_cli(&redis, &["CONFIG", "SET", "appendfsync", "everysec"]),
        ["OK"]
    );
    redis_becomes(&node, "not_durable").await;
    assert_eq!(
        status_of(&mut c, "fsync").await,
        shared::chat::Health::Degraded
    );
    let refusal = c
        .rich::<Said>(
            "say",
            &json!({"room": "fsync", "text": "while lossy", "cid": "f2"}),
        )
        .await
        .expect_err("refused while Redis does not fsync every write");
    assert_eq!(refusal.code, shared::chat::ErrorCode::Unavailable);

    assert_eq!(
        redis_cli(&redis, &["CONFIG", "SET", "appendfsync", "always"]),
        ["OK"]
    );
    redis_becomes(&node, "ok").await;
    assert_eq!(status_of(&mut c, "fsync").await, shared::chat::Health::Ok);
    let said = say(&mut c, "fsync", "after", "f3").await;
    assert_eq!(said.seq, 2, "the refused message was never stored");
    let history: Vec<Msg> = c
        .rich(
            "history",
            &json!({"room": "fsync", "before": 100, "limit": 10}),
        )
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|m| (m.seq, m.text.as_str()))
            .collect::<Vec<_>>(),
        [(1, "before"), (2, "after")]
    );
}
