//! Several processes on the in-memory hub, without Redis: they agree on
//! order and `seq`, read a dropped publication back from the log, and
//! catch up after missing a stretch.

use super::*;

fn hub_ports(hub: &Hub, node: &str) -> Ports {
    let node = Arc::new(hub.node(node));
    let log: Arc<dyn Log> = node.clone();
    let bus: Arc<dyn Bus> = node;
    Ports { log, bus }
}

#[tokio::test]
async fn three_processes_agree_on_order_and_seq() {
    let hub = Hub::new(1_000);
    let rooms: Vec<RoomHandle> = ["p1", "p2", "p3"]
        .iter()
        .map(|p| spawn(hub_ports(&hub, p), "shared"))
        .collect();
    let mut peers: Vec<Peer> = (0..3).map(|i| Peer::new(i + 1, &format!("u{i}"))).collect();
    for (room, peer) in rooms.iter().zip(&peers) {
        join(room, peer).await;
    }
    // 3 × 30 says, concurrently, one sender per process.
    let mut senders = Vec::new();
    for (i, room) in rooms.iter().enumerate() {
        let room = room.clone();
        senders.push(tokio::spawn(async move {
            let conn = i as u64 + 1;
            let mut mine = Vec::new();
            for k in 0..30 {
                let text = format!("p{conn}-{k}");
                mine.push((say(&room, conn, "u", &text, &text).await, text));
            }
            mine
        }));
    }
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.expect("sender"));
    }
    acked.sort();
    assert_eq!(
        acked.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=90).collect::<Vec<_>>(),
        "one seq each, no gap"
    );
    let want: Vec<(u64, String)> = acked;
    for peer in &mut peers {
        assert_eq!(
            peer.msgs(90).await,
            want,
            "every process delivers the same order"
        );
    }
}

#[tokio::test]
async fn a_dropped_publication_is_read_back_from_the_log() {
    let hub = Hub::new(1_000);
    let (a, b) = (
        spawn(hub_ports(&hub, "p1"), "lossy"),
        spawn(hub_ports(&hub, "p2"), "lossy"),
    );
    let writer = Peer::new(1, "w");
    let mut reader = Peer::new(2, "r");
    join(&a, &writer).await;
    join(&b, &reader).await;
    say(&a, 1, "w", "one", "c1").await;
    assert_eq!(reader.msgs(1).await, [(1, "one".to_owned())]);
    // The next publication is lost; the one after shows the gap, which the
    // reader's process reads back from the log, in order.
    hub.drop_publications(1);
    say(&a, 1, "w", "two", "c2").await;
    say(&a, 1, "w", "three", "c3").await;
    assert_eq!(
        reader.msgs(2).await,
        [(2, "two".to_owned()), (3, "three".to_owned())]
    );
    // The last publication is lost and nothing follows: the head, read now
    // and then, shows it.
    hub.drop_publications(1);
    say(&a, 1, "w", "four", "c4").await;
    hub.announce_heads();
    assert_eq!(reader.msgs(1).await, [(4, "four".to_owned())]);
}

#[tokio::test]
async fn a_process_that_misses_a_stretch_catches_up() {
    let hub = Hub::new(1_000);
    let a = spawn(hub_ports(&hub, "p1"), "gap");
    let writer = Peer::new(1, "w");
    join(&a, &writer).await;
    // Another process has the room open while 200 entries go by unseen.
    let b = spawn(hub_ports(&hub, "p2"), "gap");
    let mut reader = Peer::new(2, "r");
    join(&b, &reader).await;
    hub.drop_publications(200);
    for i in 1..=200 {
        say(&a, 1, "w", &format!("m{i}"), &format!("c{i}")).await;
    }
    hub.announce_heads();
    let want: Vec<(u64, String)> = (1..=200).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(
        reader.msgs(200).await,
        want,
        "caught up in order, nothing twice"
    );
    say(&a, 1, "w", "live", "c-live").await;
    assert_eq!(reader.msgs(1).await, [(201, "live".to_owned())]);
}
