//! Cluster mode on a sharded Redis Cluster: three masters made with
//! `redis-cli --cluster create`, two server processes started with
//! `--redis-cluster`, rooms whose keys live on every master. Order,
//! presence, recovery on the other process and idempotent retries hold as
//! on one Redis (`tests/cluster.rs`).

mod common;

use common::{Binary, Client, RedisCluster};
use serde_json::json;
use shared::chat::{Msg, RoomState, Said, Welcome};
use std::{collections::BTreeMap, ffi::OsStr};

fn node(cluster: &RedisCluster) -> Binary {
    let seeds = cluster.seeds();
    Binary::start(&[
        OsStr::new("--redis-cluster"),
        OsStr::new(&seeds),
        OsStr::new("--node-ttl-secs"),
        OsStr::new("2"),
    ])
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

async fn collect(c: &mut Client, room: &str, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m: Msg = c.next_msg(room).await;
        out.push((m.seq, m.text));
    }
    out
}

/// Two rooms per master: names picked by the slot their keys hash to.
fn rooms_on_every_master(cluster: &RedisCluster) -> BTreeMap<String, (u16, u16)> {
    let mut per_master: BTreeMap<u16, usize> = BTreeMap::new();
    let mut rooms = BTreeMap::new();
    for i in 0.. {
        let room = format!("room-{i}");
        let slot = cluster.slot(&format!("chat:{{{room}}}:seq"));
        let master = cluster.master_of(slot);
        let n = per_master.entry(master).or_default();
        if *n < 2 {
            *n += 1;
            rooms.insert(room, (slot, master));
        }
        if rooms.len() == 6 {
            break;
        }
    }
    rooms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)] // where the rooms live
async fn two_processes_share_rooms_spread_over_three_masters() {
    let cluster = RedisCluster::start();
    let rooms = rooms_on_every_master(&cluster);
    for (room, (slot, master)) in &rooms {
        println!("[redis-cluster] {room}: slot {slot}, master 127.0.0.1:{master}");
    }
    let (a, b) = (node(&cluster), node(&cluster));
    let (mut ann, ann_welcome) = hello(&a, json!({"v": 1, "nick": "ann"})).await;
    let (mut bob, _) = hello(&b, json!({"v": 1, "nick": "bob"})).await;
    let (mut carl, carl_welcome) = hello(&a, json!({"v": 1, "nick": "carl"})).await;
    let mut epochs = BTreeMap::new();
    for room in rooms.keys() {
        join(&mut ann, room).await;
        join(&mut bob, room).await;
        epochs.insert(room.clone(), join(&mut carl, room).await.epoch);
    }

    // Presence crosses processes (the member hash lives on the room's
    // master; changes come by pub/sub).
    let first = rooms.keys().next().expect("rooms");
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let members = join(&mut bob, first).await.members;
        if members == ["ann", "bob", "carl"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bob on b never saw ann and carl of a: {members:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Order: both processes post to every room at once; everyone sees the
    // same order, seq 1..=20, each once.
    let mut carl_cursors = BTreeMap::new();
    for room in rooms.keys() {
        let (from_a, from_b) = tokio::join!(
            async {
                for i in 0..10 {
                    say(&mut ann, room, &format!("a{i}"), &format!("{room}-a{i}")).await;
                }
            },
            async {
                for i in 0..10 {
                    say(&mut bob, room, &format!("b{i}"), &format!("{room}-b{i}")).await;
                }
            }
        );
        let _ = (from_a, from_b);
        let seen_by_ann = collect(&mut ann, room, 20).await;
        let seen_by_bob = collect(&mut bob, room, 20).await;
        let seen_by_carl = collect(&mut carl, room, 20).await;
        assert_eq!(
            seen_by_ann.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>(),
            "{room}: seq 1..=20"
        );
        assert_eq!(
            seen_by_ann, seen_by_bob,
            "{room}: one order on both processes"
        );
        assert_eq!(seen_by_ann, seen_by_carl, "{room}");
        carl_cursors.insert(room.clone(), 20u64);
    }

    // Recovery on the other process: carl (on a) leaves, more is said on
    // b, carl resumes his session on b and gets exactly what he missed.
    carl.close().await;
    for room in rooms.keys() {
        for i in 0..5 {
            say(
                &mut bob,
                room,
                &format!("late{i}"),
                &format!("{room}-late{i}"),
            )
            .await;
        }
    }
    let resume: Vec<_> = rooms
        .keys()
        .map(|room| json!({"room": room, "epoch": epochs[room], "seq": carl_cursors[room]}))
        .collect();
    let (_carl, back) = hello(
        &b,
        json!({"v": 1, "nick": "carl", "session": carl_welcome.session, "resume": resume}),
    )
    .await;
    assert_eq!(
        back.session, carl_welcome.session,
        "the session resumes on b"
    );
    let resumed: Vec<&RoomState> = back
        .rooms
        .iter()
        .filter(|r| rooms.contains_key(&r.room))
        .collect();
    assert_eq!(resumed.len(), rooms.len(), "with every room");
    for state in resumed {
        assert!(state.recovered, "{}: recovered", state.room);
        assert_eq!(
            state
                .history
                .iter()
                .map(|m| (m.seq, m.text.as_str()))
                .collect::<Vec<_>>(),
            (0..5)
                .map(|i| (21 + i, format!("late{i}")))
                .collect::<Vec<_>>()
                .iter()
                .map(|(s, t)| (*s, t.as_str()))
                .collect::<Vec<_>>(),
            "{}: exactly what was missed",
            state.room
        );
    }

    // Idempotent retries across processes: ann's say, retried on b with
    // her session and cid, gets the original seq and is stored once.
    let said = say(&mut ann, first, "once", "retry-1").await;
    ann.close().await;
    let (mut ann_on_b, again) = hello(
        &b,
        json!({"v": 1, "nick": "ann", "session": ann_welcome.session}),
    )
    .await;
    assert_eq!(again.session, ann_welcome.session);
    let retry = say(&mut ann_on_b, first, "once", "retry-1").await;
    assert_eq!(retry, said, "the retry gets the original seq");
    let next = say(&mut ann_on_b, first, "then", "retry-2").await;
    assert_eq!(next.seq, said.seq + 1, "nothing stored twice");

    // Every room's keys are where their slot says: on all three masters.
    let mut masters = std::collections::BTreeSet::new();
    for (room, (_, master)) in &rooms {
        let key = format!("chat:{{{room}}}:log");
        assert_eq!(cluster.owner(&key), Some(*master), "{key}");
        masters.insert(*master);
    }
    assert_eq!(masters.len(), 3, "rooms on every master");
}
