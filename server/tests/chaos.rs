//! A fault-injection run in the style of Jepsen, bounded in time: three
//! server processes on one Redis, 50 clients posting with `cid`s and
//! retrying, while a nemesis kills server processes (SIGKILL), restarts
//! Redis, and cuts one process off from Redis through a proxy, at random
//! moments. Afterwards it checks:
//!
//! - every acknowledged message is stored exactly once, with the `seq` it
//!   was acknowledged with, and each room's `seq`s are contiguous;
//! - every client saw each room's messages in order, without a gap or a
//!   repeat, across its reconnects (it recovered exactly what it missed,
//!   or was told it could not and started over);
//! - every live process serves the same history for every room.
//!
//! The quick form (the test command) runs two minutes of faults; set
//! `CHAT_CHAOS_SECS` for a longer run. It prints what it injected and what
//! it checked.

mod common;

use common::{Binary, Client, Partition, Redis};
use serde_json::json;
use shared::chat::{Cursor, Msg, RoomState, Said, Welcome, parse_envelope};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    ffi::OsStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const CLIENTS: usize = 50;
const ROOMS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Where the live processes are (the nemesis replaces killed ones).
type Nodes = Arc<Mutex<Vec<String>>>;

/// One client's deliveries in one room (see [`Ledger::seen`]).
type View = Vec<Option<(u32, u64)>>;

/// What the run saw, for the checks.
#[derive(Default)]
struct Ledger {
    /// `(session, cid)` → `(room, text, seq)`, as acknowledged.
    acked: HashMap<(String, String), (String, String, u64)>,
    /// What each client saw of each room, in order: `(epoch, seq)` (the
    /// epoch as its index in `epochs`); a `None` marks a view replaced
    /// (`recovered: false`).
    seen: Vec<BTreeMap<String, View>>,
    epochs: Vec<String>,
    reconnects: usize,
    replaced: usize,
}

impl Ledger {
    fn saw(&mut self, client: usize, room: &str, epoch: &str, seq: u64) {
        let epoch = match self.epochs.iter().position(|e| e == epoch) {
            Some(i) => i,
            None => {
                self.epochs.push(epoch.to_owned());
                self.epochs.len() - 1
            }
        };
        let epoch = u32::try_from(epoch).expect("few epochs");
        self.seen[client]
            .entry(room.to_owned())
            .or_default()
            .push(Some((epoch, seq)));
    }
}

fn pick(nodes: &Nodes) -> String {
    let nodes = nodes.lock().expect("nodes");
    nodes[rand::random_range(0..nodes.len())].clone()
}

fn start_node(url: &str) -> Binary {
    Binary::start(&[
        OsStr::new("--redis"),
        OsStr::new(url),
        OsStr::new("--node-ttl-secs"),
        OsStr::new("3"),
    ])
}

/// One client: posts to its rooms with fresh `cid`s, retrying each until it
/// is acknowledged, reconnecting (with its session and cursors) to any live
/// process whenever its connection fails.
async fn client(
    id: usize,
    nodes: Nodes,
    ledger: Arc<Mutex<Ledger>>,
    until: Instant,
) -> Result<(), String> {
    let mut session: Option<String> = None;
    let mut cursors: BTreeMap<String, Cursor> = BTreeMap::new();
    let mut n = 0u64;
    let mut pending: Option<(String, String, String)> = None; // room, text, cid
    'connect: while Instant::now() < until {
        let url = pick(&nodes);
        let Ok(Ok((ws, _))) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio_tungstenite::connect_async(common::request(&url)),
        )
        .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut c = Client::from_ws(ws);
        let hello = json!({
            "v": 1,
            "nick": format!("c{id}"),
            "session": session,
            "resume": cursors.values().collect::<Vec<_>>(),
        });
        let Ok(answer) = tokio::time::timeout(
            Duration::from_secs(5),
            c.try_call("hello", serde_json::to_vec(&hello).expect("json")),
        )
        .await
        else {
            continue;
        };
        let Some(Ok(welcome)) = answer.and_then(|a| parse_envelope::<Welcome>(&a).ok()) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if session.is_some() {
            ledger.lock().expect("ledger").reconnects += 1;
        }
        session = Some(welcome.session.clone());
        for state in &welcome.rooms {
            take_state(id, state, &mut cursors, &ledger);
        }
        for room in ROOMS {
            if !welcome.rooms.iter().any(|r| r.room == room) {
                // Not resumed (a new client, or a save Redis missed): join,
                // from where this client was if it was.
                let body = json!({"room": room, "since": cursors.get(room)});
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    c.try_call("join", serde_json::to_vec(&body).expect("json")),
                )
                .await
                {
                    Ok(Some(answer)) => match parse_envelope::<RoomState>(&answer) {
                        Ok(Ok(state)) => take_state(id, &state, &mut cursors, &ledger),
                        _ => continue 'connect,
                    },
                    _ => continue 'connect,
                }
            }
        }
        while Instant::now() < until {
            let (room, text, cid) = pending.take().unwrap_or_else(|| {
                n += 1;
                let room = ROOMS[rand::random_range(0..ROOMS.len())].to_owned();
                (room, format!("c{id}-m{n}"), format!("m{n}"))
            });
            let body = json!({"room": room, "text": text, "cid": cid});
            let sent = c
                .try_request("say", serde_json::to_vec(&body).expect("json"))
                .await;
            let answer = match sent {
                Ok(request) => {
                    // Messages may arrive before the answer.
                    tokio::time::timeout(Duration::from_secs(5), async {
                        loop {
                            match c.next_frame_or_end().await {
                                Some(shared::Frame::Response { id: rid, payload })
                                    if rid == request =>
                                {
                                    return Some(payload);
                                }
                                Some(shared::Frame::Notify { name, payload }) if name == "msg" => {
                                    let m: Msg = serde_json::from_slice(&payload).expect("msg");
                                    take_msg(id, &m, &mut cursors, &ledger)?;
                                }
                                Some(_) => {}
                                None => return None,
                            }
                        }
                    })
                    .await
                    .ok()
                    .flatten()
                }
                Err(()) => None,
            };
            let Some(answer) = answer else {
                pending = Some((room, text, cid));
                continue 'connect;
            };
            match parse_envelope::<Said>(&answer) {
                Ok(Ok(said)) => {
                    let key = (session.clone().unwrap_or_default(), cid.clone());
                    {
                        let mut ledger = ledger.lock().expect("ledger");
                        if let Some(before) = ledger.acked.get(&key)
                            && before.2 != said.seq
                        {
                            return Err(format!(
                                "{cid} acknowledged twice, as {} and {}",
                                before.2, said.seq
                            ));
                        }
                        ledger.acked.insert(key, (room, text, said.seq));
                    }
                    // People type: about ten messages a second a client.
                    tokio::time::sleep(Duration::from_millis(rand::random_range(20..180))).await;
                }
                // Not stored for now (Redis away, a room degraded): again,
                // same cid.
                Ok(Err(_)) => {
                    pending = Some((room, text, cid));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(format!("unreadable answer: {e}")),
            }
        }
    }
    Ok(())
}

/// A room's state after a (re)join: a recovered gap continues the view;
/// otherwise the view is replaced.
fn take_state(
    id: usize,
    state: &RoomState,
    cursors: &mut BTreeMap<String, Cursor>,
    ledger: &Arc<Mutex<Ledger>>,
) {
    let mut ledger = ledger.lock().expect("ledger");
    if !state.recovered && cursors.contains_key(&state.room) {
        ledger.seen[id]
            .entry(state.room.clone())
            .or_default()
            .push(None);
        ledger.replaced += 1;
    }
    for m in &state.history {
        ledger.saw(id, &state.room, &m.epoch, m.seq);
    }
    cursors.insert(
        state.room.clone(),
        Cursor {
            room: state.room.clone(),
            epoch: state.epoch.clone(),
            seq: state.seq,
        },
    );
}

fn take_msg(
    id: usize,
    m: &Msg,
    cursors: &mut BTreeMap<String, Cursor>,
    ledger: &Arc<Mutex<Ledger>>,
) -> Option<()> {
    ledger
        .lock()
        .expect("ledger")
        .saw(id, &m.room, &m.epoch, m.seq);
    if let Some(cursor) = cursors.get_mut(&m.room) {
        cursor.epoch.clone_from(&m.epoch);
        cursor.seq = m.seq;
    }
    Some(())
}

/// Every message of a room, through `history` pages, from one process.
async fn history(url: &str, room: &str) -> Vec<Msg> {
    let mut c = Client::connect(url).await;
    let _: Welcome = c
        .rich("hello", &json!({"v": 1, "nick": "auditor"}))
        .await
        .expect("hello");
    let _: RoomState = c.rich("join", &json!({"room": room})).await.expect("join");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)] // the run's report
async fn acknowledged_messages_survive_kills_redis_restarts_and_partitions() {
    let secs: u64 = std::env::var("CHAT_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let mut redis = Redis::start();
    // Process 0 reaches Redis through a proxy the nemesis can cut.
    let partition = Partition::to(redis.port).await;
    let direct = redis.url();
    let mut processes: Vec<Binary> = vec![
        start_node(&partition.url()),
        start_node(&direct),
        start_node(&direct),
    ];
    let nodes: Nodes = Arc::new(Mutex::new(
        processes.iter().map(|p| p.url.clone()).collect(),
    ));
    let ledger = Arc::new(Mutex::new(Ledger {
        seen: (0..CLIENTS).map(|_| BTreeMap::new()).collect(),
        ..Ledger::default()
    }));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(id, nodes.clone(), ledger.clone(), until)))
        .collect();

    // The nemesis.
    let mut injected: Vec<String> = Vec::new();
    while Instant::now() + Duration::from_secs(3) < until {
        tokio::time::sleep(Duration::from_millis(rand::random_range(1_000..2_500))).await;
        let at = started.elapsed().as_secs_f64();
        match rand::random_range(0..3) {
            0 => {
                // Kill a process that talks to Redis directly, start another.
                let victim = rand::random_range(1..processes.len());
                processes[victim].signal("-KILL");
                let fresh = start_node(&direct);
                let mut live = nodes.lock().expect("nodes");
                live.retain(|u| *u != processes[victim].url);
                live.push(fresh.url.clone());
                drop(live);
                processes[victim] = fresh;
                injected.push(format!("{at:.1}s kill -9 a process"));
            }
            1 => {
                redis.kill();
                let down = rand::random_range(300..1_500);
                tokio::time::sleep(Duration::from_millis(down)).await;
                redis.restart();
                injected.push(format!("{at:.1}s redis down for {down} ms"));
            }
            _ => {
                partition.cut();
                let cut = rand::random_range(500..4_000);
                tokio::time::sleep(Duration::from_millis(cut)).await;
                partition.restore();
                injected.push(format!(
                    "{at:.1}s process 0 cut off from redis for {cut} ms"
                ));
            }
        }
    }
    for c in clients {
        c.await.expect("client task").expect("client");
    }
    // Let every process catch up (heads are read every second).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
    let urls: Vec<String> = nodes.lock().expect("nodes").clone();
    let mut stored_total = 0;
    for room in ROOMS {
        let mut views = Vec::new();
        for url in &urls {
            views.push(history(url, room).await);
        }
        let reference = &views[0];
        for (url, view) in urls.iter().zip(&views) {
            assert_eq!(
                view.iter().map(|m| (m.seq, &m.text)).collect::<Vec<_>>(),
                reference
                    .iter()
                    .map(|m| (m.seq, &m.text))
                    .collect::<Vec<_>>(),
                "{url} serves the same history of {room}"
            );
        }
        let seqs: Vec<u64> = reference.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=reference.len() as u64).collect::<Vec<_>>(),
            "{room}: contiguous seq"
        );
        let texts: HashSet<&str> = reference.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts.len(), reference.len(), "{room}: no message twice");
        stored_total += reference.len();
        for ((_, cid), (r, text, seq)) in &ledger.acked {
            if r == room {
                let stored = reference.iter().find(|m| m.seq == *seq);
                assert_eq!(
                    stored.map(|m| m.text.as_str()),
                    Some(text.as_str()),
                    "{room}: {cid} acknowledged as {seq} is stored there"
                );
            }
        }
    }
    // What every client saw: in order, without a gap or a repeat, within
    // each view (a view ends where the server said it could not recover).
    let mut checked = 0;
    for (id, rooms) in ledger.seen.iter().enumerate() {
        for (room, seen) in rooms {
            for view in seen.split(Option::is_none) {
                for pair in view.windows(2) {
                    let (Some((e1, s1)), Some((e2, s2))) = (&pair[0], &pair[1]) else {
                        continue;
                    };
                    assert!(
                        e1 == e2 && *s2 == s1 + 1,
                        "client {id} in {room}: ({e1}, {s1}) then ({e2}, {s2})"
                    );
                    checked += 1;
                }
            }
        }
    }
    println!(
        "[chaos] {secs} s, {} faults: {}",
        injected.len(),
        injected.join("; ")
    );
    println!(
        "[chaos] {} messages acknowledged, {stored_total} stored (in {} rooms, the same on {} processes), {} reconnects ({} views replaced), {checked} consecutive deliveries checked",
        ledger.acked.len(),
        ROOMS.len(),
        urls.len(),
        ledger.reconnects,
        ledger.replaced
    );
    assert!(!injected.is_empty(), "faults were injected");
    assert!(ledger.acked.len() <= stored_total);
}
