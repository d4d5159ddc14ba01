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
