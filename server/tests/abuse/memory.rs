//! Memory: every reply, every outbox and the store's queue are bounded in
//! bytes, so clients that ask for a lot and never read cannot grow the
//! server (before: 121 MB for one 90-byte request, 4.8 GB in 15 s).

use super::*;
use bytes::Bytes;
use serde_json::json;
use shared::chat::{Cursor, RoomState, Welcome, parse_envelope};

const TEXT: usize = 2_000;
const BIG: usize = 3_000;
const SMALL_ROOMS: usize = 30;
const SMALL: usize = 100;
/// `--max-reply-bytes` (default) and a little for the envelope.
const REPLY_BOUND: usize = 1024 * 1024 + 4 * 1024;
/// Growth of the server's resident memory any one attack may cause.
const RSS_BOUND_MB: f64 = 300.0;

/// A server whose rooms were filled earlier: `big` with 3,000 messages of
/// 2,000 characters and `r0`…`r29` with 100 each (filled without a rate
/// limit, then restarted with the default limits).
async fn filled_server(test: &str) -> (Server, PathBuf) {
    let data = data_dir(test);
    let dir = data.to_str().expect("utf-8 path").to_owned();
    let server = Server::start(&[
        "--data-dir",
        &dir,
        "--rate-limit",
        "0",
        "--rooms-per-ip-per-minute",
        "0",
    ]);
    let text = "x".repeat(TEXT);
    let mut c = server.client().await;
    hello(&mut c, "filler").await;
    let _: RoomState = c.rich("join", &json!({"room": "big"})).await.expect("join");
    fill(&mut c, "big", BIG, &text, 64).await;
    for i in 0..SMALL_ROOMS {
        let room = format!("r{i}");
        let _: RoomState = c.rich("join", &json!({"room": room})).await.expect("join");
        fill(&mut c, &room, SMALL, &text, 64).await;
    }
    c.close().await;
    // Every attacker here is 127.0.0.1: per-address budgets would stop
    // them before the bounds under test are reached.
    let server = server.restart_with(&[
        "--data-dir",
        &dir,
        "--max-connections-per-ip",
        "0",
        "--sessions-per-ip-per-minute",
        "0",
    ]);
    (server, data)
}

/// Samples the server's RSS and socket count from `started` until `until`;
/// returns the highest RSS and when the sockets first fell to `n`.
async fn watch(
    server: &Server,
    started: Instant,
    until: Instant,
    n: u64,
) -> (f64, Option<Duration>) {
    let mut peak = server.rss_mb();
    let mut fell = None;
    let mut attacked = false;
    while Instant::now() < until {
        peak = peak.max(server.rss_mb());
        let sockets = server.health()["connections"].as_u64().unwrap_or(0);
        // The attackers connect first, then get cut.
        attacked |= sockets >= n + 10;
        if attacked && fell.is_none() && sockets <= n {
            fell = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (peak, fell)
}

fn cursor(room: &str, epoch: &str) -> Cursor {
    Cursor {
        room: room.into(),
        epoch: epoch.into(),
        seq: 0,
    }
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn recovery_from_any_cursor_is_bounded_in_messages_and_bytes() {
    const T: &str = "recovery";
    let (mut server, _data) = filled_server(T).await;
    let mut reader = server.client().await;
    hello(&mut reader, "reader").await;
    let mut cursors = Vec::new();
    for room in std::iter::once("big".to_owned()).chain((0..SMALL_ROOMS).map(|i| format!("r{i}"))) {
        let state: RoomState = reader
            .rich("join", &json!({"room": room}))
            .await
            .expect("join");
        cursors.push(cursor(&room, &state.epoch));
    }

    // One join from the beginning of a 6 MB room.
    let join = json!({"room": "big", "since": cursors[0]});
    let answer = reader
        .call("join", serde_json::to_vec(&join).expect("json"))
        .await;
    let state: RoomState = parse_envelope(&answer).expect("envelope").expect("join");
    report(
        T,
        format!(
            "join since seq 0 of a {BIG}-message room: {} bytes, {} messages, recovered {}",
            answer.len(),
            state.history.len(),
            state.recovered
        ),
    );
    assert!(answer.len() <= REPLY_BOUND, "{} bytes", answer.len());
    assert!(!state.recovered, "a gap past the bound is not recovered");
    assert!(!state.history.is_empty(), "the latest page still comes");

    // One hello resuming 31 rooms from their beginning.
    let mut again = server.client().await;
    let body = json!({"v": 1, "nick": "again", "resume": cursors});
    let answer = again
        .call("hello", serde_json::to_vec(&body).expect("json"))
        .await;
    let welcome: Welcome = parse_envelope(&answer).expect("envelope").expect("hello");
    report(
        T,
        format!(
            "hello resuming {} rooms from seq 0: {} bytes",
            welcome.rooms.len(),
            answer.len()
        ),
    );
    assert!(answer.len() <= REPLY_BOUND, "{} bytes", answer.len());
    assert_eq!(
        welcome.rooms.len(),
        SMALL_ROOMS + 2,
        "lobby, big and r0…r29"
    );

    // Ten clients that never read ask for it again and again, at the
    // default rate.
    let bystander = Bystander::start(&server).await;
    let before = server.rss_mb();
    let started = Instant::now();
    let hello_body = serde_json::to_vec(&body).expect("json");
    let join_body = Bytes::from(serde_json::to_vec(&join).expect("json"));
    let mut attackers = Vec::new();
    for _ in 0..10 {
        let url = server.url.clone();
        let (hello_body, join_body) = (hello_body.clone(), join_body.clone());
        attackers.push(tokio::spawn(async move {
            let mut c = Client::connect(&url).await;
            let _ = c.try_request("hello", hello_body).await;
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if c.try_request("join", join_body.clone()).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(55)).await;
            }
            // Held, unread, until the test ends.
            c
        }));
    }
    let (peak, fell) = watch(&server, started, started + Duration::from_secs(6), 3).await;
    let cut = match fell {
        Some(at) => Some(at),
        None => sockets_fall_to(&server, 3, Duration::from_secs(20))
            .await
            .map(|d| d + started.elapsed()),
    };
    report(
        T,
        format!(
            "10 clients that never read, asking for it at 18/s for 5 s: RSS {before:.0} -> peak {peak:.0} MB (+{:.0}); all cut {cut:.2?} after the attack began, {} closed 4008",
            peak - before,
            server.metric("chat_slow_consumer_disconnects_total")
        ),
    );
    assert!(server.alive(), "the server survived");
    assert!(
        peak - before < RSS_BOUND_MB,
        "RSS grew by {:.0} MB",
        peak - before
    );
    assert!(cut.is_some(), "clients that never read are cut");
    bystander_ok(T, bystander);
    drop(attackers);
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn history_pages_for_clients_that_never_read_stop_at_the_outbox_bound() {
    const T: &str = "outbox";
    let (mut server, _data) = filled_server(T).await;
    let bystander = Bystander::start(&server).await;
    let before = server.rss_mb();
    let started = Instant::now();
    let page = Bytes::from(
        serde_json::to_vec(&json!({"room": "big", "before": BIG + 1, "limit": 200})).expect("json"),
    );
    let mut attackers = Vec::new();
    for i in 0..10 {
        let url = server.url.clone();
        let page = page.clone();
        attackers.push(tokio::spawn(async move {
            let mut c = Client::connect(&url).await;
            hello(&mut c, &format!("pager{i}")).await;
            let _: RoomState = c.rich("join", &json!({"room": "big"})).await.expect("join");
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if c.try_request("history", page.clone()).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(55)).await;
            }
            c
        }));
    }
    let (peak, fell) = watch(&server, started, started + Duration::from_secs(6), 1).await;
    let cut = match fell {
        Some(at) => Some(at),
        None => sockets_fall_to(&server, 1, Duration::from_secs(20))
            .await
            .map(|d| d + started.elapsed()),
    };
    let slow = metric_reaches(
        &server,
        "chat_slow_consumer_disconnects_total",
        10.0,
        Duration::from_secs(5),
    )
    .await;
    report(
        T,
        format!(
            "10 clients that never read, each asking for 200-message pages (~430 KB) at 18/s for 5 s: RSS {before:.0} -> peak {peak:.0} MB (+{:.0}); all cut {cut:.2?} after the attack began, {slow} of them with 4008",
            peak - before
        ),
    );
    assert!(server.alive(), "the server survived");
    assert!(
        peak - before < RSS_BOUND_MB,
        "RSS grew by {:.0} MB",
        peak - before
    );
    assert!(cut.is_some(), "clients that never read are cut");
    assert!(slow >= 1.0, "an overflowing outbox closes with 4008");
    bystander_ok(T, bystander);
    drop(attackers);
}

#[tokio::test]
#[ignore = "abuse suite: scripts/test.sh runs it against the release binary"]
async fn a_slow_disk_refuses_posts_at_once_instead_of_queueing_them() {
    const T: &str = "slow-disk";
    const QUEUE: usize = 4 * 1024 * 1024;
    let data = data_dir(T);
    let queue = QUEUE.to_string();
    let mut server = Server::start(&[
        "--data-dir",
        data.to_str().expect("path"),
        "--test-commit-delay-ms",
        "1000",
        "--store-queue-bytes",
        &queue,
        "--max-connections-per-ip",
        "0",
        "--sessions-per-ip-per-minute",
        "0",
        "--rooms-per-ip-per-minute",
        "0",
    ]);
    let bystander = Bystander::start(&server).await;
    let before = server.rss_mb();
    let text = "y".repeat(TEXT);
    let mut senders = Vec::new();
    for i in 0..100 {
        let url = server.url.clone();
        let text = text.clone();
        senders.push(tokio::spawn(async move {
            // Each in a room of its own: what is measured is the store's
            // queue, not a fan-out.
            let room = format!("slow-{i}");
            let mut c = Client::connect(&url).await;
            hello(&mut c, &format!("s{i}")).await;
            let _: RoomState = c.rich("join", &json!({"room": room})).await.expect("join");
            // The default burst: 40 at once.
            let mut ids = Vec::new();
            for n in 0..38 {
                let body = json!({"room": room, "text": text, "cid": format!("{i}-{n}")});
                ids.push(
                    c.request("say", serde_json::to_vec(&body).expect("json"))
                        .await,
                );
            }
            let mut outcome = (Vec::new(), 0usize, 0usize);
            for id in ids {
                let answer = c.response(id).await;
                match parse_envelope::<shared::chat::Said>(&answer).expect("envelope") {
                    Ok(said) => outcome.0.push(said.seq),
                    Err(e) if e.code == shared::chat::ErrorCode::Unavailable => outcome.1 += 1,
                    Err(_) => outcome.2 += 1,
                }
            }
            outcome
        }));
    }
    let mut queue_peak = 0.0f64;
    let mut rss_peak = before;
    while !senders.iter().all(tokio::task::JoinHandle::is_finished) {
        queue_peak = queue_peak.max(server.metric("chat_store_queue_bytes"));
        rss_peak = rss_peak.max(server.rss_mb());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut stored, mut unavailable, mut other) = (Vec::<u64>::new(), 0, 0);
    for s in senders {
        let (seqs, u, o) = s.await.expect("sender");
        stored.extend(seqs);
        unavailable += u;
        other += o;
    }
    let total = stored.len();
    report(
        T,
        format!(
            "100 clients x 38 says of 2,000 chars, commits taking 1 s: {total} stored, {unavailable} told unavailable, {other} other; store queue peak {queue_peak:.0} B (bound {QUEUE}); RSS {before:.0} -> {rss_peak:.0} MB"
        ),
    );
    assert!(unavailable > 0, "a full queue says unavailable");
    assert!(
        queue_peak <= (QUEUE + 16 * 1024) as f64,
        "queue peaked at {queue_peak}"
    );
    assert!(
        rss_peak - before < 100.0,
        "RSS grew by {:.0}",
        rss_peak - before
    );
    assert!(server.alive());
    bystander_ok(T, bystander);
}
