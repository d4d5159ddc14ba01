//! Rooms past the presence limit: the member list is capped and joins and
//! leaves are not announced to everyone (that would be quadratic).

mod common;

use common::{TestServer, config, rich_client};
use server::limits::PRESENCE_LIMIT;
use std::time::Duration;

#[tokio::test]
async fn a_huge_lobby_lists_at_most_the_limit_and_sends_no_presence() {
    let mut cfg = config();
    cfg.max_connections = PRESENCE_LIMIT + 50;
    let server = TestServer::start(cfg).await;
    // Rich members while the lobby is small see presence.
    let (mut watcher, _) = rich_client(&server, "watcher").await;
    let (_early, _) = rich_client(&server, "early").await;
    assert!(
        watcher
            .sees_event_within("presence", Duration::from_secs(5))
            .await,
        "a small room announces joins"
    );
    // Seed connections are lobby members too: fill it past the limit.
    let mut seeds = Vec::new();
    for _ in 0..PRESENCE_LIMIT {
        seeds.push(server.client().await);
    }
    // A rich client arriving now gets a capped list, and nobody is told.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let welcome = loop {
        let (late, welcome) = rich_client(&server, "late").await;
        let lobby = welcome
            .rooms
            .iter()
            .find(|r| r.room == "lobby")
            .expect("lobby");
        if lobby.members.len() == PRESENCE_LIMIT {
            break (late, welcome);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lobby still lists {} members",
            lobby.members.len()
        );
        late.close().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(welcome.1.rooms[0].members.len(), PRESENCE_LIMIT);
    // Drain what the watcher got while the lobby was small, then nothing more.
    while watcher
        .sees_event_within("presence", Duration::from_millis(300))
        .await
    {
        let _ = watcher.event("presence").await;
    }
    let (_another, _) = rich_client(&server, "another").await;
    watcher
        .assert_no_event_within(
            "presence",
            Duration::from_millis(500),
            "a room past the limit announces no joins",
        )
        .await;
    drop(seeds);
    server.stop().await;
}
