//! Durable history: acknowledged messages survive SIGKILL, recovery and
//! scrollback survive restarts, write failures are answered and recovered,
//! and a damaged database stops start-up with a clear message.

mod common;

use bytes::Bytes;
use common::{Binary, Client, SendFrame, TestServer, name, temp_dir};
use serde_json::json;
use shared::{
    Frame,
    chat::{Cursor, ErrorCode, Msg, RoomState, Said, Welcome, parse_envelope},
};
use std::{
    collections::{HashMap, HashSet},
    path::Path,
    process::Command,
    time::Duration,
};

/// The binary with its history in `data`.
fn start(data: &Path) -> Binary {
    Binary::start(&["--data-dir".as_ref(), data.as_os_str()])
}

/// Stops it with a signal and waits until it is gone.
fn stop(server: &mut Binary, sig: &str) {
    server.signal(sig);
    let _ = server.child.wait();
}

async fn hello(c: &mut Client, body: serde_json::Value) -> Welcome {
    c.rich("hello", &body).await.expect("hello")
}

/// Every stored message of a room, oldest first, through `history` pages.
async fn all_messages(c: &mut Client, room: &str) -> Vec<Msg> {
    let mut before = u64::MAX;
    let mut out = Vec::new();
    loop {
        let page: Vec<Msg> = c
            .rich(
                "history",
                &json!({"room": room, "before": before, "limit": 200}),
            )
            .await
            .expect("history");
        let Some(first) = page.first() else { break };
        before = first.seq;
        out.splice(0..0, page);
        if before <= 1 {
            break;
        }
    }
    out
}

fn say_frame(id: u32, room: &str, text: &str, cid: &str) -> Frame {
    let body = serde_json::to_vec(&json!({"room": room, "text": text, "cid": cid})).expect("json");
    Frame::request(id, name("say"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_exactly_once_and_in_order() {
    const TOTAL: usize = 5_000;
    const WINDOW: usize = 64;
    let data = temp_dir("crash");
    let mut server = start(&data);
    let mut c = Client::connect(&server.url).await;
    let welcome = hello(&mut c, json!({"v": 1, "nick": "crasher"})).await;
    let _: RoomState = c
        .rich("join", &json!({"room": "crash"}))
        .await
        .expect("join");

    // Kill when a random number of acknowledgements has come back.
    let kill_at = 500 + (rand::random::<u32>() as usize % 4_000);
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut pending: HashMap<u32, (usize, String)> = HashMap::new();
    let mut sent = 0usize;
    let mut next_id = 1_000u32;
    let mut killed = false;
    'traffic: loop {
        while sent < TOTAL && pending.len() < WINDOW {
            let cid = format!("c{sent:05}");
            if c.ws
                .send_frame(say_frame(next_id, "crash", &format!("m{sent:05}"), &cid))
                .await
                .is_err()
            {
                break 'traffic;
            }
            pending.insert(next_id, (sent, cid));
            next_id += 1;
            sent += 1;
        }
        if pending.is_empty() {
            break;
        }
        match c.next_frame_or_end().await {
            Some(Frame::Response { id, payload }) => {
                if let Some((_, cid)) = pending.remove(&id) {
                    let said: Result<Said, _> = parse_envelope(&payload).expect("envelope");
                    acked.insert(cid, said.expect("stored").seq);
                }
                if !killed && acked.len() >= kill_at {
                    stop(&mut server, "-KILL");
                    killed = true;
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(killed, "the server was killed mid-traffic");
    eprintln!(
        "crash test: SIGKILL after {} acknowledgements, {sent} sent, {} in flight",
        acked.len(),
        pending.len()
    );
    assert!(acked.len() < TOTAL, "some messages were not acknowledged");

    // Restart on the same data: every acknowledged message is there once,
    // in order, with contiguous seq.
    let server = start(&data);
    let mut c = Client::connect(&server.url).await;
    let again = hello(&mut c, json!({"v": 1, "session": welcome.session})).await;
    assert_eq!(again.nick, "crasher", "the session survives the restart");
    assert!(
        again.rooms.iter().any(|r| r.room == "crash"),
        "and its rooms"
    );
    let stored = all_messages(&mut c, "crash").await;
    for (i, m) in stored.iter().enumerate() {
        assert_eq!(m.seq, i as u64 + 1, "contiguous seq");
    }
    let texts: Vec<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    let mut sorted = texts.clone();
    sorted.sort_unstable();
    assert_eq!(texts, sorted, "in the order sent");
    let by_cid: HashMap<&str, u64> = stored
        .iter()
        .map(|m| (m.cid.as_deref().expect("cid"), m.seq))
        .collect();
    assert_eq!(by_cid.len(), stored.len(), "no cid twice");
    for m in &stored {
        let cid = m.cid.as_deref().expect("cid");
        assert_eq!(
            m.text,
            format!("m{}", &cid[1..]),
            "seq {} keeps the text sent with {cid}",
            m.seq
        );
    }
    for (cid, seq) in &acked {
        assert_eq!(
            by_cid.get(cid.as_str()),
            Some(seq),
            "acknowledged {cid} kept with its seq"
        );
    }

    // Retrying every unacknowledged message (same cids) stores each once.
    let unacked: Vec<usize> = (0..TOTAL)
        .filter(|i| !acked.contains_key(&format!("c{i:05}")))
        .collect();
    let mut retried: HashMap<String, u64> = HashMap::new();
    for chunk in unacked.chunks(WINDOW) {
        let mut ids = Vec::new();
        for i in chunk {
            let cid = format!("c{i:05}");
            let id = c
                .request(
                    "say",
                    serde_json::to_vec(
                        &json!({"room": "crash", "text": format!("m{i:05}"), "cid": cid}),
                    )
                    .expect("json"),
                )
                .await;
            ids.push(id);
        }
        for (id, i) in ids.into_iter().zip(chunk) {
            let said: Result<Said, _> = parse_envelope(&c.response(id).await).expect("envelope");
            retried.insert(format!("c{i:05}"), said.expect("stored on retry").seq);
        }
    }
    let stored = all_messages(&mut c, "crash").await;
    assert_eq!(stored.len(), TOTAL, "every message exactly once");
    let cids: HashSet<&str> = stored.iter().filter_map(|m| m.cid.as_deref()).collect();
    assert_eq!(cids.len(), TOTAL);
    for (i, m) in stored.iter().enumerate() {
        assert_eq!(m.seq, i as u64 + 1, "still contiguous");
        let cid = m.cid.as_deref().expect("cid");
        assert_eq!(m.text, format!("m{}", &cid[1..]), "{cid} kept its own text");
        let answered = acked.get(cid).or_else(|| retried.get(cid));
        assert_eq!(answered, Some(&m.seq), "{cid} was answered with its seq");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn recovery_and_scrollback_survive_a_restart() {
    let data = temp_dir("restart");
    let mut server = start(&data);
    let mut ann = Client::connect(&server.url).await;
    let welcome = hello(&mut ann, json!({"v": 1, "nick": "ann"})).await;
    let state: RoomState = ann.rich("join", &json!({"room": "r"})).await.expect("join");
    let mut bob = Client::connect(&server.url).await;
    hello(&mut bob, json!({"v": 1, "nick": "bob"})).await;
    let _: RoomState = bob.rich("join", &json!({"room": "r"})).await.expect("join");
    let _: Said = bob
        .rich("say", &json!({"room": "r", "text": "before", "cid": "b0"}))
        .await
        .expect("say");
    let seen = ann.next_msg("r").await;
    let cursor = Cursor {
        room: "r".into(),
        epoch: state.epoch.clone(),
        seq: seen.seq,
    };
    ann.close().await;
    for i in 1..=5 {
        let _: Said = bob
            .rich(
                "say",
                &json!({"room": "r", "text": format!("missed {i}"), "cid": format!("b{i}")}),
            )
            .await
            .expect("say");
    }
    stop(&mut server, "-TERM");

    let server = start(&data);
    let mut back = Client::connect(&server.url).await;
    let again = hello(
        &mut back,
        json!({"v": 1, "session": welcome.session, "resume": [cursor]}),
    )
    .await;
    let r = again.rooms.iter().find(|s| s.room == "r").expect("room r");
    assert_eq!(r.epoch, state.epoch, "the epoch survives the restart");
    assert!(r.recovered, "exact recovery across the restart");
    assert_eq!(
        r.history
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>(),
        ["missed 1", "missed 2", "missed 3", "missed 4", "missed 5"]
    );
    let older: Vec<Msg> = back
        .rich("history", &json!({"room": "r", "before": 2, "limit": 10}))
        .await
        .expect("scrollback");
    assert_eq!(
        older.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["before"]
    );
    // seq continues after the restart.
    let said: Said = back
        .rich("say", &json!({"room": "r", "text": "after", "cid": "a1"}))
        .await
        .expect("say");
    assert_eq!(said.seq, 7);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn a_write_failure_answers_unavailable_and_recovers() {
    use server::sqlite::{Retention, SqliteStore};
    let data = temp_dir("fail");
    let store = SqliteStore::open(
        &data,
        Retention {
            max_messages: 1_000,
            max_age: None,
        },
    )
    .expect("store");
    let server =
        TestServer::start_with_store(common::config(), std::sync::Arc::new(store.clone())).await;
    let mut c = server.client().await;
    hello(&mut c, json!({"v": 1, "nick": "w"})).await;
    let _: RoomState = c.rich("join", &json!({"room": "w"})).await.expect("join");
    let first: Said = c
        .rich("say", &json!({"room": "w", "text": "one", "cid": "1"}))
        .await
        .expect("say");

    store.fail_writes(true);
    let err = c
        .rich::<Said>("say", &json!({"room": "w", "text": "two", "cid": "2"}))
        .await
        .expect_err("write fails");
    assert_eq!(err.code, ErrorCode::Unavailable);
    // The server is still up and answering.
    assert_eq!(
        c.call("uppercase", &b"up"[..]).await,
        Bytes::from_static(b"UP")
    );

    store.fail_writes(false);
    let retried: Said = c
        .rich("say", &json!({"room": "w", "text": "two", "cid": "2"}))
        .await
        .expect("works again");
    assert_eq!(retried.seq, first.seq + 1, "no gap after the failure");
    let all = all_messages(&mut c, "w").await;
    assert_eq!(
        all.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_damaged_database_stops_start_up_with_a_clear_message() {
    let data = temp_dir("corrupt");
    std::fs::write(data.join("chat.db"), vec![0x5a; 8192]).expect("garbage");
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "refuses to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the history store"), "{stderr}");
    assert!(stderr.contains("chat.db"), "names the file: {stderr}");
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn retention_keeps_the_newest_and_seq_continues() {
    use server::sqlite::{Retention, SqliteStore};
    let data = temp_dir("retention");
    let retention = Retention {
        max_messages: 10,
        max_age: None,
    };
    let store = SqliteStore::open(&data, retention).expect("store");
    let server =
        TestServer::start_with_store(common::config(), std::sync::Arc::new(store.clone())).await;
    let mut c = server.client().await;
    hello(&mut c, json!({"v": 1, "nick": "keeper"})).await;
    let state: RoomState = c
        .rich("join", &json!({"room": "kept"}))
        .await
        .expect("join");
    for i in 1..=30 {
        let _: Said = c
            .rich(
                "say",
                &json!({"room": "kept", "text": format!("t{i}"), "cid": format!("k{i}")}),
            )
            .await
            .expect("say");
    }
    store.sweep().await;
    let kept = all_messages(&mut c, "kept").await;
    assert_eq!(
        kept.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (21..=30).collect::<Vec<_>>()
    );
    // A cursor whose gap was swept cannot be recovered exactly.
    let old = Cursor {
        room: "kept".into(),
        epoch: state.epoch.clone(),
        seq: 5,
    };
    let s: RoomState = c
        .rich("join", &json!({"room": "kept", "since": old}))
        .await
        .expect("join");
    assert!(!s.recovered);
    assert_eq!(s.epoch, state.epoch, "retention does not change the epoch");
    let said: Said = c
        .rich(
            "say",
            &json!({"room": "kept", "text": "next", "cid": "k31"}),
        )
        .await
        .expect("say");
    assert_eq!(said.seq, 31, "seq continues");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn retention_by_age_drops_old_messages_but_never_the_newest() {
    use server::sqlite::{Retention, SqliteStore};
    let data = temp_dir("age");
    let retention = Retention {
        max_messages: 1_000,
        max_age: Some(Duration::from_millis(300)),
    };
    let store = SqliteStore::open(&data, retention).expect("store");
    let server =
        TestServer::start_with_store(common::config(), std::sync::Arc::new(store.clone())).await;
    let mut c = server.client().await;
    hello(&mut c, json!({"v": 1, "nick": "ager"})).await;
    let _: RoomState = c
        .rich("join", &json!({"room": "aged"}))
        .await
        .expect("join");
    let say = |text: &'static str| json!({"room": "aged", "text": text, "cid": text});
    for text in ["old-1", "old-2", "old-3"] {
        let _: Said = c.rich("say", &say(text)).await.expect("say");
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let said: Said = c.rich("say", &say("new")).await.expect("say");
    store.sweep().await;
    let texts = |msgs: Vec<Msg>| msgs.into_iter().map(|m| m.text).collect::<Vec<_>>();
    assert_eq!(texts(all_messages(&mut c, "aged").await), ["new"]);
    // Once it is old too, the newest stays, so `seq` continues.
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.sweep().await;
    assert_eq!(texts(all_messages(&mut c, "aged").await), ["new"]);
    let next: Said = c.rich("say", &say("next")).await.expect("say");
    assert_eq!(next.seq, said.seq + 1);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn retention_trims_busy_rooms_by_itself() {
    use server::sqlite::{Retention, SqliteStore};
    let data = temp_dir("trim");
    let retention = Retention {
        max_messages: 5,
        max_age: None,
    };
    let store = SqliteStore::open(&data, retention).expect("store");
    let server = TestServer::start_with_store(common::config(), std::sync::Arc::new(store)).await;
    let mut c = server.client().await;
    hello(&mut c, json!({"v": 1, "nick": "trimmer"})).await;
    let _: RoomState = c
        .rich("join", &json!({"room": "busy"}))
        .await
        .expect("join");
    for i in 1..=12 {
        let _: Said = c
            .rich(
                "say",
                &json!({"room": "busy", "text": format!("t{i}"), "cid": format!("b{i}")}),
            )
            .await
            .expect("say");
    }
    // No explicit sweep: the writer trims rooms written lately every second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seqs: Vec<u64> = all_messages(&mut c, "busy")
            .await
            .iter()
            .map(|m| m.seq)
            .collect();
        if seqs == (8..=12).collect::<Vec<_>>() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still not trimmed: {seqs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn a_resumed_session_retrying_an_old_cid_after_a_new_one_gets_its_seq() {
    use server::sqlite::{Retention, SqliteStore};
    let data = temp_dir("resumed-retry");
    let retention = Retention {
        max_messages: 1_000,
        max_age: None,
    };
    let (token, old) = {
        let store = SqliteStore::open(&data, retention).expect("store");
        let server =
            TestServer::start_with_store(common::config(), std::sync::Arc::new(store.clone()))
                .await;
        let mut c = server.client().await;
        let welcome = hello(&mut c, json!({"v": 1, "nick": "returner"})).await;
        let _: RoomState = c
            .rich("join", &json!({"room": "again"}))
            .await
            .expect("join");
        let old: Said = c
            .rich(
                "say",
                &json!({"room": "again", "text": "before", "cid": "old-1"}),
            )
            .await
            .expect("say");
        c.close().await;
        server.stop().await;
        store.sweep().await; // the writer has committed everything
        (welcome.session, old)
    };
    // Another run on the same data: the session comes back, says something
    // new, then retries the old message (its ack was lost, say).
    let store = SqliteStore::open(&data, retention).expect("store");
    let server = TestServer::start_with_store(common::config(), std::sync::Arc::new(store)).await;
    let mut c = server.client().await;
    let welcome = hello(&mut c, json!({"v": 1, "session": token})).await;
    assert!(welcome.rooms.iter().any(|r| r.room == "again"));
    let new: Said = c
        .rich(
            "say",
            &json!({"room": "again", "text": "after", "cid": "new-1"}),
        )
        .await
        .expect("say");
    assert_eq!(new.seq, old.seq + 1);
    let retried: Said = c
        .rich(
            "say",
            &json!({"room": "again", "text": "before", "cid": "old-1"}),
        )
        .await
        .expect("retry");
    assert_eq!(retried.seq, old.seq, "the retry gets its original seq");
    let texts: Vec<String> = all_messages(&mut c, "again")
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["before", "after"], "stored once");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

/// Says `texts` (with their cids) over `c`, up to 64 in flight; the seq of
/// each, in order.
async fn say_all(c: &mut Client, room: &str, sent: &[(String, String)]) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(sent.len());
    for chunk in sent.chunks(64) {
        let mut ids = Vec::with_capacity(chunk.len());
        for (text, cid) in chunk {
            let body = json!({"room": room, "text": text, "cid": cid});
            ids.push(
                c.request("say", serde_json::to_vec(&body).expect("json"))
                    .await,
            );
        }
        for id in ids {
            let said: Result<Said, _> = parse_envelope(&c.response(id).await).expect("envelope");
            seqs.push(said.expect("stored").seq);
        }
    }
    seqs
}

/// The `cid` windows the README states: a session's last 4,096 cids per
/// room are answered from memory, older ones from the room's last 10,000
/// messages in the database (also after a restart); beyond that a retry is
/// a new message. Each edge is probed on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_cids_keep_their_seq_within_the_last_10_000_messages() {
    use server::sqlite::{DEDUP_WINDOW, Retention, SqliteStore};
    const TOTAL: u64 = DEDUP_WINDOW + 1;
    let data = temp_dir("cid-window");
    let retention = Retention {
        max_messages: 100_000,
        max_age: None,
    };
    let sent: Vec<(String, String)> = (1..=TOTAL)
        .map(|seq| (format!("t{seq}"), format!("c{seq}")))
        .collect();
    // The message `back` places from the newest (1: the newest itself).
    let nth_back = |back: u64| &sent[(TOTAL - back) as usize];
    let retry = async |c: &mut Client, (text, cid): &(String, String)| -> u64 {
        let said: Said = c
            .rich("say", &json!({"room": "w", "text": text, "cid": cid}))
            .await
            .expect("retry");
        said.seq
    };

    let store = SqliteStore::open(&data, retention).expect("store");
    let server =
        TestServer::start_with_store(common::config(), std::sync::Arc::new(store.clone())).await;
    let mut c = server.client().await;
    let welcome = hello(&mut c, json!({"v": 1, "nick": "windows"})).await;
    let _: RoomState = c.rich("join", &json!({"room": "w"})).await.expect("join");
    let seqs = say_all(&mut c, "w", &sent).await;
    assert_eq!(seqs, (1..=TOTAL).collect::<Vec<_>>());

    // In memory: the newest and the 4,096th newest.
    assert_eq!(retry(&mut c, nth_back(1)).await, TOTAL);
    assert_eq!(retry(&mut c, nth_back(4_096)).await, TOTAL - 4_095);
    // Past memory, from the database: the 4,097th and the 10,000th newest.
    assert_eq!(retry(&mut c, nth_back(4_097)).await, TOTAL - 4_096);
    assert_eq!(retry(&mut c, nth_back(10_000)).await, TOTAL - 9_999);
    // The 10,001st newest is out of every window: stored again.
    assert_eq!(
        retry(&mut c, nth_back(10_001)).await,
        TOTAL + 1,
        "a cid older than the window is a new message"
    );
    c.close().await;
    server.stop().await;
    store.sweep().await;

    // After a restart (nothing in memory), the database window alone:
    // 10,002 messages now, so seq 3 is the 10,000th newest, seq 2 is not.
    let store = SqliteStore::open(&data, retention).expect("store");
    let server = TestServer::start_with_store(common::config(), std::sync::Arc::new(store)).await;
    let mut c = server.client().await;
    let back = hello(&mut c, json!({"v": 1, "session": welcome.session})).await;
    assert!(back.rooms.iter().any(|r| r.room == "w"));
    assert_eq!(retry(&mut c, &sent[TOTAL as usize - 1]).await, TOTAL);
    assert_eq!(retry(&mut c, &sent[2]).await, 3, "the 10,000th newest");
    assert_eq!(
        retry(&mut c, &sent[1]).await,
        TOTAL + 2,
        "the 10,001st newest is stored again"
    );
    let stored = all_messages(&mut c, "w").await;
    let tail: Vec<(u64, &str)> = stored[stored.len() - 3..]
        .iter()
        .map(|m| (m.seq, m.text.as_str()))
        .collect();
    assert_eq!(
        tail,
        [(TOTAL, "t10001"), (TOTAL + 1, "t1"), (TOTAL + 2, "t2")],
        "only the retries past the window were stored again"
    );
    assert_eq!(stored.len() as u64, TOTAL + 2);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

/// A session's last change (here: joining a room with no messages, which
/// only the session record remembers) is written before the server exits
/// on SIGTERM. With commits slowed to 2 s the save is still queued when
/// the signal comes; without the flush at shutdown it was lost.
#[tokio::test]
async fn a_session_saved_just_before_sigterm_survives_the_restart() {
    let data = temp_dir("last-save");
    let mut server = Binary::start(&[
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--test-commit-delay-ms".as_ref(),
        "2000".as_ref(),
    ]);
    let mut c = Client::connect(&server.url).await;
    let welcome = hello(&mut c, json!({"v": 1, "nick": "latecomer"})).await;
    let _: RoomState = c
        .rich("join", &json!({"room": "quiet"}))
        .await
        .expect("join");
    stop(&mut server, "-TERM");

    let server = start(&data);
    let mut c = Client::connect(&server.url).await;
    let back = hello(&mut c, json!({"v": 1, "session": welcome.session})).await;
    let mut rooms: Vec<&str> = back.rooms.iter().map(|r| r.room.as_str()).collect();
    rooms.sort_unstable();
    assert_eq!(back.nick, "latecomer");
    assert_eq!(rooms, ["lobby", "quiet"], "the room joined last is kept");
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
