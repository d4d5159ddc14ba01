//! Rooms: they close when their last member leaves, a cursor does not
//! create one, replies that list them are bounded, and each address has a
//! budget for new rooms and sessions that reconnecting does not reset.

use super::*;
use serde_json::json;
use shared::chat::{Cursor, ErrorCode, RoomInfo, RoomState, Welcome};

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn ten_thousand_rooms_opened_and_left_close_again() {
    const T: &str = "rooms";
    const ROOMS: usize = 10_000;
    let server = Server::start(&[
        "--in-memory",
        "--rate-limit",
        "0",
        "--max-connections-per-ip",
        "0",
        "--rooms-per-ip-per-minute",
        "0",
        "--sessions-per-ip-per-minute",
        "0",
        "--max-rooms",
        "10001",
    ]);
    let mut watcher = server.client().await;
    hello(&mut watcher, "watcher").await;
    let bystander = Bystander::start(&server).await;
    let before = server.rss_mb();
    let started = Instant::now();
    let mut openers = Vec::new();
    // 31 rooms each (the lobby is the 32nd), 2 clients at a time.
    let per = 31;
    let clients = ROOMS.div_ceil(per);
    for batch in (0..clients).collect::<Vec<_>>().chunks(clients.div_ceil(2)) {
        let url = server.url.clone();
        let batch = batch.to_vec();
        openers.push(tokio::spawn(async move {
            let mut held = Vec::new();
            for i in batch {
                let mut c = Client::connect(&url).await;
                hello(&mut c, &format!("o{i}")).await;
                let mut ids = Vec::new();
                for r in 0..per {
                    let n = i * per + r;
                    if n >= ROOMS {
                        break;
                    }
                    let body = json!({"room": format!("room-{n}")});
                    ids.push(
                        c.request("join", serde_json::to_vec(&body).expect("json"))
                            .await,
                    );
                }
                for id in ids {
                    let answer = c.response(id).await;
                    shared::chat::parse_envelope::<RoomState>(&answer)
                        .expect("envelope")
                        .expect("joined");
                }
                held.push(c);
            }
            held
        }));
    }
    let mut held = Vec::new();
    for o in openers {
        held.extend(o.await.expect("opener"));
    }
    let open = server.health()["rooms"].as_u64().unwrap_or(0);
    let peak = server.rss_mb();
    // A `rooms` request (13 bytes) lists a bounded number of them.
    let answer = watcher.call("rooms", &b"{}"[..]).await;
    let listed: Vec<RoomInfo> = shared::chat::parse_envelope(&answer)
        .expect("envelope")
        .expect("rooms");
    report(
        T,
        format!(
            "{open} rooms open after {:.1?}: RSS {before:.0} -> {peak:.0} MB; `rooms` answers {} bytes listing {}",
            started.elapsed(),
            answer.len(),
            listed.len()
        ),
    );
    assert_eq!(open as usize, ROOMS + 1, "every room and the lobby");
    assert!(listed.len() <= 200 && answer.len() < 16 * 1024);
    // Everyone leaves.
    for c in held {
        c.close().await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut left = u64::MAX;
    while Instant::now() < deadline {
        left = server.health()["rooms"].as_u64().unwrap_or(u64::MAX);
        if left <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_mb();
    report(
        T,
        format!(
            "after everyone left: {left} room(s) open (the lobby, which the watcher is in); RSS {after:.0} MB"
        ),
    );
    assert_eq!(left, 1, "rooms without members closed");
    // The server can open rooms again: the cap is on rooms open at once.
    let _: RoomState = watcher
        .rich("join", &json!({"room": "fresh"}))
        .await
        .expect("a new room after all that");
    bystander_ok(T, bystander);
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn resume_cursors_for_rooms_that_do_not_exist_create_nothing() {
    const T: &str = "cursors";
    let server = Server::start(&[
        "--in-memory",
        "--max-connections-per-ip",
        "0",
        "--sessions-per-ip-per-minute",
        "0",
    ]);
    let started = Instant::now();
    let mut all = Vec::new();
    for i in 0..340 {
        let mut c = server.client().await;
        let resume: Vec<Cursor> = (0..31)
            .map(|r| Cursor {
                room: format!("ghost-{i}-{r}"),
                epoch: "0000000000000000".into(),
                seq: 1,
            })
            .collect();
        let w: Welcome = c
            .rich("hello", &json!({"v": 1, "resume": resume}))
            .await
            .expect("hello");
        assert_eq!(w.rooms.len(), 1, "only the lobby");
        all.push(c);
    }
    let open = server.health()["rooms"].as_u64();
    report(
        T,
        format!(
            "340 hellos with 31 cursors for rooms that never existed, in {:.1?}: {open:?} room(s) open",
            started.elapsed()
        ),
    );
    assert_eq!(open, Some(1));
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn an_address_budget_for_rooms_and_sessions_survives_reconnecting() {
    const T: &str = "budgets";
    let server = Server::start(&["--in-memory", "--rate-limit", "0"]);
    // Rooms: 30 a minute per address, however many sockets it opens.
    let mut created = 0;
    let mut sessions = 0;
    let mut refused = None;
    'outer: for s in 0..10 {
        let mut c = server.client().await;
        hello(&mut c, &format!("maker{s}")).await;
        sessions += 1;
        for r in 0..10 {
            match c
                .rich::<RoomState>("join", &json!({"room": format!("b-{s}-{r}")}))
                .await
            {
                Ok(_) => created += 1,
                Err(e) => {
                    refused = Some(e.code);
                    break 'outer;
                }
            }
        }
    }
    report(
        T,
        format!(
            "new rooms from one address across reconnects: {created} created, then {refused:?}"
        ),
    );
    assert_eq!(created, 30);
    assert_eq!(refused, Some(ErrorCode::RateLimited));
    // Sessions: 60 a minute per address (the makers above used some).
    let mut started = sessions;
    let mut refused = None;
    for _ in 0..100 {
        let mut c = server.client().await;
        match c.rich::<Welcome>("hello", &json!({"v": 1})).await {
            Ok(_) => started += 1,
            Err(e) => {
                refused = Some(e.code);
                break;
            }
        }
    }
    report(
        T,
        format!("new sessions from one address: {started} started, then {refused:?}"),
    );
    assert_eq!(started, 60);
    assert_eq!(refused, Some(ErrorCode::RateLimited));
    // Connections: 256 per address.
    let mut open = Vec::new();
    let mut refused_code = None;
    for _ in 0..300 {
        let mut c = server.client().await;
        if let Some(end) = c.next_frame_or_end_within(Duration::from_millis(20)).await {
            refused_code = Some(end);
            break;
        }
        open.push(c);
    }
    report(
        T,
        format!(
            "sockets from one address: {} open (plus the test's own), then {refused_code:?}",
            open.len()
        ),
    );
    assert!(matches!(refused_code, Some(common::End::Closed(1008))));
    assert!(open.len() <= 256);
}

/// Creates, joins, writes to and leaves `rooms` rooms, one after another
/// (by 4 clients at once); the server's RSS after the first 1,000 and
/// after all of them.
async fn rooms_come_and_go(server: &Server, rooms: usize) -> (f64, f64) {
    const CLIENTS: usize = 4;
    let cycle = |from: usize, to: usize| {
        let url = server.url.clone();
        tokio::spawn(async move {
            let mut c = Client::connect(&url).await;
            hello(&mut c, &format!("cycler{from}")).await;
            for n in from..to {
                let room = format!("r{n}");
                let _: RoomState = c.rich("join", &json!({"room": room})).await.expect("join");
                let said: shared::chat::Said = c
                    .rich(
                        "say",
                        &json!({"room": room, "text": "here once", "cid": format!("c{n}")}),
                    )
                    .await
                    .expect("say");
                assert_eq!(said.seq, 1);
                let _: serde_json::Value = c
                    .rich("leave", &json!({"room": room}))
                    .await
                    .expect("leave");
            }
            c.close().await;
        })
    };
    let run = |from: usize, to: usize| {
        let per = (to - from).div_ceil(CLIENTS);
        (0..CLIENTS)
            .map(|k| cycle(from + k * per, (from + (k + 1) * per).min(to)))
            .collect::<Vec<_>>()
    };
    for task in run(0, 1_000) {
        task.await.expect("cycler");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_first = server.rss_mb();
    for task in run(1_000, rooms) {
        task.await.expect("cycler");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    (after_first, server.rss_mb())
}

const NO_BUDGETS: [&str; 8] = [
    "--rate-limit",
    "0",
    "--max-connections-per-ip",
    "0",
    "--rooms-per-ip-per-minute",
    "0",
    "--sessions-per-ip-per-minute",
    "0",
];

/// Rooms retire: 20,000 rooms, each created, joined, written to and left,
/// one after another, and the server's memory comes back to within 10% of
/// where it was after the first 1,000: a closed room's actor, cache and
/// registry entries go, and so does what the store holds for it in memory
/// (here the memory store, which keeps the last 1,000 closed rooms).
#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn twenty_thousand_rooms_come_and_go_and_memory_comes_back() {
    const T: &str = "retire";
    let mut args = vec!["--in-memory"];
    args.extend(NO_BUDGETS);
    let server = Server::start(&args);
    let started = Instant::now();
    let (after_first, after_all) = rooms_come_and_go(&server, 20_000).await;
    let open = server.health()["rooms"].as_u64().unwrap_or(u64::MAX);
    report(
        T,
        format!(
            "20,000 rooms created, written and left in {:.1?} (memory store): RSS {after_first:.1} MB after the first 1,000, {after_all:.1} MB after all ({:+.1}%); {open} room(s) open",
            started.elapsed(),
            (after_all / after_first - 1.0) * 100.0
        ),
    );
    assert!(
        after_all <= after_first * 1.10,
        "memory grew with rooms that are gone: {after_first:.1} -> {after_all:.1} MB"
    );
    assert_eq!(open, 0, "nobody is connected: no room stays open");
}

/// The same on the default store (SQLite), where what grows is only
/// SQLite's page cache holding the database (bounded by its cache size):
/// the writer lets go of a closed room's `seq`, `cid`s and epoch. A room
/// reopened continues its `seq` and `epoch`, and a cursor from before it
/// closed recovers exactly.
#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_closed_room_on_disk_lets_go_of_its_memory_and_comes_back_as_it_was() {
    const T: &str = "retire";
    let data = common::temp_dir("retire");
    let data_arg = data.to_string_lossy().into_owned();
    let mut args = vec!["--data-dir", data_arg.as_str()];
    args.extend(NO_BUDGETS);
    let server = Server::start(&args);
    // One room, written and left; its cursor, for after everything.
    let mut first = server.client().await;
    hello(&mut first, "first").await;
    let kept: RoomState = first
        .rich("join", &json!({"room": "kept"}))
        .await
        .expect("join");
    for i in 1..=5 {
        let _: shared::chat::Said = first
            .rich(
                "say",
                &json!({"room": "kept", "text": format!("k{i}"), "cid": format!("k{i}")}),
            )
            .await
            .expect("say");
    }
    let _: serde_json::Value = first
        .rich("leave", &json!({"room": "kept"}))
        .await
        .expect("leave");
    let (after_first, after_all) = rooms_come_and_go(&server, 20_000).await;
    let database = ["chat.db", "chat.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len() as f64 / 1e6)
        .sum::<f64>();
    report(
        T,
        format!(
            "20,000 rooms on disk: RSS {after_first:.1} MB after the first 1,000, {after_all:.1} MB after all (+{:.1} MB; the database and its log are {database:.1} MB, which SQLite's page cache holds)",
            after_all - after_first
        ),
    );
    assert!(
        after_all - after_first <= database + after_first * 0.10,
        "memory grew beyond the page cache: {after_first:.1} -> {after_all:.1} MB"
    );

    // The first room, reopened: same epoch, seq goes on, and a cursor from
    // before it closed recovers exactly.
    let back: RoomState = first
        .rich(
            "join",
            &json!({"room": "kept", "since": Cursor {
                room: "kept".into(),
                epoch: kept.epoch.clone(),
                seq: 2,
            }}),
        )
        .await
        .expect("join");
    assert!(back.recovered);
    assert_eq!(back.epoch, kept.epoch);
    assert_eq!(
        back.history
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>(),
        ["k3", "k4", "k5"]
    );
    let next: shared::chat::Said = first
        .rich("say", &json!({"room": "kept", "text": "k6", "cid": "k6"}))
        .await
        .expect("say");
    assert_eq!(next.seq, 6);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// `--max-rooms` bounds the rooms open at once: the 101st room of a
/// 100-room server opens as soon as one of the first 100 is empty.
#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn the_room_after_the_last_allowed_opens_once_one_is_empty() {
    const T: &str = "max-rooms";
    let mut args = vec!["--in-memory", "--max-rooms", "100"];
    args.extend(NO_BUDGETS);
    let server = Server::start(&args);
    // The lobby is one of the 100: 99 more, over 4 clients (31 each at most).
    let mut holders = Vec::new();
    for k in 0..4 {
        let mut c = server.client().await;
        hello(&mut c, &format!("holder{k}")).await;
        for n in (k * 25)..((k + 1) * 25).min(99) {
            let _: RoomState = c
                .rich("join", &json!({"room": format!("m{n}")}))
                .await
                .expect("join");
        }
        holders.push(c);
    }
    assert_eq!(server.health()["rooms"], 100);
    let mut late = server.client().await;
    hello(&mut late, "late").await;
    let refused = late
        .rich::<RoomState>("join", &json!({"room": "one-too-many"}))
        .await
        .expect_err("the 101st");
    assert_eq!(refused.code, ErrorCode::TooManyRooms);
    // One room empties: the 101st opens.
    let _: serde_json::Value = holders[0]
        .rich("leave", &json!({"room": "m0"}))
        .await
        .expect("leave");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match late
            .rich::<RoomState>("join", &json!({"room": "one-too-many"}))
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::TooManyRooms);
                assert!(Instant::now() < deadline, "the 101st never opened");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    report(T, "the 101st room opened once one of the 100 was empty");
}
