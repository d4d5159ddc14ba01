//! The room pipeline on its own: rooms spawned over the ports, members
//! whose outboxes the test reads.
//!
//! - One room-level suite, written once, runs against each backend: the
//!   memory store, SQLite, a real `redis-server`, a real three-master Redis
//!   Cluster, and the in-memory hub that stands in for Redis;
//!   `server/tests/cluster.rs` runs the real binary on Redis.
//! - Multi-process delivery on the hub, without Redis: three processes
//!   agree on order and `seq`; a dropped publication is read back; a
//!   process that misses a stretch catches up.

mod processes;

use super::{Member, Post, RoomCounters, RoomHandle, RoomLimits, actor::Ports};
use crate::{
    hub::Hub,
    log::{Bus, LocalBus, Log},
    memory::MemoryStore,
    outbox::{Bounds, Kill, Outbox, Receiver},
    sqlite::{Retention, SqliteStore},
};
use shared::{
    Frame,
    chat::{Msg, RoomState},
};
use std::{sync::Arc, time::Duration};

/// A member whose frames the test reads.
struct Peer {
    member: Member,
    rx: Receiver,
}

impl Peer {
    fn new(conn: u64, nick: &str) -> Self {
        let (outbox, rx) = Outbox::new(
            Bounds {
                frames: 100_000,
                bytes: 64 << 20,
            },
            Kill::default(),
        );
        Self {
            member: Member {
                conn,
                nick: nick.to_owned(),
                outbox,
                chat_client: true,
                signed_in: false,
            },
            rx,
        }
    }

    /// The next `msg` this member was sent (other frames are skipped).
    async fn next_msg(&mut self) -> Msg {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let frame = self.rx.rx.recv().await.expect("the outbox is open");
                if let Ok(Frame::Notify { name, payload }) = Frame::decode(&frame)
                    && name == "msg"
                {
                    return serde_json::from_slice(&payload).expect("a msg");
                }
            }
        })
        .await
        .expect("a msg arrives in time")
    }

    async fn msgs(&mut self, n: usize) -> Vec<(u64, String)> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let m = self.next_msg().await;
            out.push((m.seq, m.text));
        }
        out
    }
}

fn spawn(ports: Ports, room: &str) -> RoomHandle {
    RoomHandle::spawn(
        room,
        ports,
        100,
        1_024,
        (
            prometheus_client::metrics::histogram::Histogram::new([1.0]),
            RoomCounters::default(),
        ),
        RoomLimits::default(),
    )
}

fn post(conn: u64, from: &str, text: &str, cid: &str) -> Post {
    Post {
        author: Some(format!("s:{from}")),
        change: None,
        reply: None,
        conn,
        from: from.to_owned(),
        text: text.to_owned(),
        cid: Some(cid.to_owned()),
        session: Some(format!("session-{conn}")),
        received: std::time::Instant::now(),
    }
}

async fn say(room: &RoomHandle, conn: u64, from: &str, text: &str, cid: &str) -> u64 {
    room.post(post(conn, from, text, cid))
        .await
        .expect("queued")
        .await
        .expect("answered")
        .expect("stored")
        .seq
}

/// An edit (with `text`) or a delete (`text` empty) of message `of` by
/// `from`; `any`: `from` moderates the room.
async fn change(
    room: &RoomHandle,
    (conn, from): (u64, &str),
    of: u64,
    text: Option<&str>,
    any: bool,
    cid: &str,
) -> Result<u64, shared::chat::ErrorCode> {
    let kind = if text.is_some() {
        shared::chat::Change::Edit
    } else {
        shared::chat::Change::Delete
    };
    let mut post = post(conn, from, text.unwrap_or_default(), cid);
    post.change = Some(crate::log::ChangeOf { kind, of, any });
    room.post(post)
        .await
        .expect("queued")
        .await
        .expect("answered")
        .map(|said| said.seq)
        .map_err(|e| e.code)
}

async fn join(room: &RoomHandle, peer: &Peer) -> RoomState {
    room.join(peer.member.clone(), None, 1 << 20)
        .await
        .expect("joined")
}

/// The room-level suite, one body for every backend: order and `seq`,
/// idempotent retries, history, and recovery from a cursor after a room
/// retired and came back.
async fn room_suite(ports: impl Fn() -> Ports) {
    let room = spawn(ports(), "suite");
    let mut ann = Peer::new(1, "ann");
    let mut bob = Peer::new(2, "bob");
    let state = join(&room, &ann).await;
    join(&room, &bob).await;
    assert_eq!(state.seq, 0);

    let mut seqs = Vec::new();
    for i in 1..=20 {
        seqs.push(say(&room, 1, "ann", &format!("t{i}"), &format!("c{i}")).await);
    }
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    let want: Vec<(u64, String)> = (1..=20).map(|i| (i, format!("t{i}"))).collect();
    assert_eq!(ann.msgs(20).await, want, "in seq order, each once");
    assert_eq!(bob.msgs(20).await, want);

    // A retry gets the original seq, and nobody sees it again.
    assert_eq!(say(&room, 1, "ann", "t5", "c5").await, 5);
    assert_eq!(say(&room, 1, "ann", "t21", "c21").await, 21);
    assert_eq!(bob.next_msg().await.seq, 21, "the retry was not delivered");

    // History pages.
    let page = room.history(1, 11, 3, 1 << 20).await.expect("history");
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [8, 9, 10]);
    // Only to a member: a connection the room does not hold gets nothing.
    let outsider = room
        .history(99, 11, 3, 1 << 20)
        .await
        .expect_err("not a member");
    assert_eq!(outsider.code, shared::chat::ErrorCode::NotJoined);

    // The room retires (everyone leaves, every handle goes) and comes back
    // with the same epoch and seq; a cursor recovers exactly.
    let epoch = state.epoch.clone();
    room.leave(1).await.expect("leave");
    room.leave(2).await.expect("leave");
    drop(room);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = spawn(ports(), "suite");
    let carl = Peer::new(3, "carl");
    let back = again
        .join(
            carl.member.clone(),
            Some(shared::chat::Cursor {
                room: "suite".into(),
                epoch: epoch.clone(),
                seq: 17,
            }),
            1 << 20,
        )
        .await
        .expect("joined");
    assert!(back.recovered, "recovered across the retirement");
    assert_eq!(back.epoch, epoch);
    assert_eq!(
        back.history.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [18, 19, 20, 21]
    );
    assert_eq!(say(&again, 3, "carl", "next", "c-next").await, 22);
    changes_suite(&again, carl, &ports).await;
}

/// Edits and deletes: entries of their own, checked by the log, applied to
/// what joins and history show, recovered from a cursor like messages.
async fn changes_suite(room: &RoomHandle, mut carl: Peer, ports: &impl Fn() -> Ports) {
    use shared::chat::{Change, ErrorCode};
    let ann = Peer::new(4, "ann");
    let epoch = join(room, &ann).await.epoch;
    // Ann (conn 4, author "s:ann") wrote 1..=21; carl wrote 22.
    assert_eq!(
        change(room, (3, "carl"), 3, Some("hijacked"), false, "e0").await,
        Err(ErrorCode::Forbidden),
        "not carl's to edit"
    );
    assert_eq!(
        change(room, (4, "ann"), 3, Some("t3, fixed"), false, "e1").await,
        Ok(23)
    );
    assert_eq!(change(room, (4, "ann"), 4, None, false, "d1").await, Ok(24));
    assert_eq!(
        change(room, (3, "carl"), 5, None, false, "d2").await,
        Err(ErrorCode::Forbidden),
        "carl does not moderate"
    );
    assert_eq!(
        change(room, (3, "carl"), 5, None, true, "d3").await,
        Ok(25),
        "a moderator deletes anyone's"
    );
    for (of, why) in [
        (4, "deleted"),
        (999, "missing"),
        (23, "a change, not a message"),
    ] {
        assert_eq!(
            change(room, (4, "ann"), of, Some("x"), false, &format!("bad-{of}")).await,
            Err(ErrorCode::BadRequest),
            "{why}"
        );
    }
    // A retried edit is placed once.
    assert_eq!(
        change(room, (4, "ann"), 3, Some("t3, fixed"), false, "e1").await,
        Ok(23)
    );
    let mut seen: Vec<Msg> = Vec::new();
    while seen.len() < 3 {
        let m = carl.next_msg().await;
        // Carl's own message 22 came first.
        if m.seq > 22 {
            seen.push(m);
        }
    }
    let kinds: Vec<(u64, Option<Change>, Option<u64>)> =
        seen.iter().map(|m| (m.seq, m.kind, m.of)).collect();
    assert_eq!(
        kinds,
        [
            (23, Some(Change::Edit), Some(3)),
            (24, Some(Change::Delete), Some(4)),
            (25, Some(Change::Delete), Some(5)),
        ]
    );
    assert_eq!(seen[0].text, "t3, fixed");

    // What history, joins and recovery show: the final state.
    let check = |msgs: &[Msg], why: &str| {
        let at = |seq: u64| msgs.iter().find(|m| m.seq == seq).expect("there");
        assert_eq!(
            (at(3).text.as_str(), at(3).changed, at(3).deleted),
            ("t3, fixed", Some(23), false),
            "{why}: edited"
        );
        for (seq, by) in [(4, 24), (5, 25)] {
            assert_eq!(
                (at(seq).text.as_str(), at(seq).changed, at(seq).deleted),
                ("", Some(by), true),
                "{why}: deleted"
            );
        }
        assert_eq!(at(6).text, "t6", "{why}: untouched");
    };
    // A reply names the message it answers.
    let mut answer = post(4, "ann", "re: t6", "r1");
    answer.reply = Some(6);
    let said = room
        .post(answer)
        .await
        .expect("queued")
        .await
        .expect("answered")
        .expect("stored");
    assert_eq!(said.seq, 26);
    let page = room.history(3, 27, 26, 1 << 20).await.expect("history");
    check(&page, "history");
    check(&join(room, &Peer::new(5, "dee")).await.history, "a join");
    // And from the log alone, once the room retired and came back.
    for conn in [3, 4, 5] {
        room.leave(conn).await.expect("leave");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let back = spawn(ports(), "suite");
    let eve = Peer::new(6, "eve");
    let state = back
        .join(
            eve.member.clone(),
            Some(shared::chat::Cursor {
                room: "suite".into(),
                epoch,
                seq: 22,
            }),
            1 << 20,
        )
        .await
        .expect("joined");
    assert!(state.recovered);
    assert_eq!(
        state
            .history
            .iter()
            .map(|m| (m.seq, m.of))
            .collect::<Vec<_>>(),
        [(23, Some(3)), (24, Some(4)), (25, Some(5)), (26, None)],
        "recovery brings the changes"
    );
    assert_eq!(state.history[3].reply, Some(6), "and the reply's link");
    let page = back.history(6, 27, 26, 1 << 20).await.expect("history");
    check(&page, "history read back from the log");
    assert_eq!(page.last().map(|m| (m.seq, m.reply)), Some((26, Some(6))));
}

#[tokio::test]
async fn the_room_suite_holds_on_the_memory_store() {
    let store = MemoryStore::new(1_000);
    room_suite(|| Ports {
        log: Arc::new(store.clone()),
        bus: Arc::new(LocalBus),
    })
    .await;
}

#[tokio::test]
async fn the_room_suite_holds_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("chat-room-suite-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = SqliteStore::open(
        &dir,
        Retention {
            max_messages: 10_000,
            max_age: None,
        },
    )
    .expect("store");
    room_suite(|| Ports {
        log: Arc::new(store.clone()),
        bus: Arc::new(LocalBus),
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_room_suite_holds_on_the_hub() {
    let hub = Hub::new(1_000);
    room_suite(|| {
        let node = Arc::new(hub.node("p1"));
        Ports {
            log: node.clone(),
            bus: node,
        }
    })
    .await;
}

/// Cluster mode's ports on the Redis at `redis`.
async fn redis_ports(redis: crate::config::Redis) -> Arc<crate::cluster::Cluster> {
    crate::cluster::Cluster::start(crate::config::ClusterConfig {
        redis,
        node_ttl: Duration::from_secs(10),
        retention: 10_000,
        max_age: None,
        ca: None,
        identity: None,
        session_ttl_secs: 60,
        queue_bytes: 16 << 20,
        allow_lossy: false,
    })
    .await
    .expect("cluster mode starts")
}

#[tokio::test]
async fn the_room_suite_holds_on_redis() {
    let redis = crate::redis_server::Redis::start();
    let cluster = redis_ports(crate::config::Redis::One(redis.url())).await;
    room_suite(|| Ports {
        log: cluster.clone(),
        bus: cluster.clone(),
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_room_suite_holds_on_a_redis_cluster() {
    let redis = crate::redis_server::RedisCluster::start();
    let seeds = redis.seeds().split(',').map(str::to_owned).collect();
    let cluster = redis_ports(crate::config::Redis::Cluster(seeds)).await;
    room_suite(|| Ports {
        log: cluster.clone(),
        bus: cluster.clone(),
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn posts_are_refused_while_the_log_cannot_be_read() {
    // A store that refuses everything: the room never gets ready, and a
    // post says so instead of waiting.
    struct Broken;
    fn down() -> crate::log::StoreError {
        crate::log::StoreError::failed(std::io::Error::other("down"))
    }
    impl Log for Broken {
        fn append(
            &self,
            _: &str,
            _: crate::log::Entry,
        ) -> tokio::sync::oneshot::Receiver<Result<crate::log::Placed, crate::log::StoreError>>
        {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _ = tx.send(Err(down()));
            rx
        }
        fn snapshot_now(
            &self,
            _: &str,
            _: usize,
        ) -> Option<Result<crate::log::Snapshot, crate::log::StoreError>> {
            Some(Err(down()))
        }
        fn snapshot(&self, _: &str, _: usize) -> crate::log::Read<crate::log::Snapshot> {
            Box::pin(async { Err(down()) })
        }
        fn range(&self, _: &str, _: u64, _: u64) -> crate::log::Read<Vec<Msg>> {
            Box::pin(async { Err(down()) })
        }
        fn before(&self, _: &str, _: u64, _: usize) -> crate::log::Read<Vec<Msg>> {
            Box::pin(async { Err(down()) })
        }
    }
    let room = spawn(
        Ports {
            log: Arc::new(Broken),
            bus: Arc::new(LocalBus),
        },
        "broken",
    );
    let peer = Peer::new(1, "p");
    let refused = room.join(peer.member.clone(), None, 1 << 20).await;
    assert_eq!(
        refused.expect_err("no state").code,
        shared::chat::ErrorCode::Unavailable
    );
    room.enter(peer.member.clone()).await.expect("entered");
    let said = room
        .post(post(1, "p", "x", "c"))
        .await
        .expect("queued")
        .await
        .expect("answered");
    assert_eq!(
        said.expect_err("refused").code,
        shared::chat::ErrorCode::Unavailable
    );
}
