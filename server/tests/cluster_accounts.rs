//! Accounts in cluster mode: two server processes (the real binary) on one
//! real `redis-server`, and on a sharded Redis Cluster. An account made on
//! one process signs in on the other; signing out on one closes the
//! session's sockets on both at once, and its cookie opens nothing on
//! either; a private room made on one is invisible to outsiders on the
//! other, its invitation reaches the invited account's socket wherever it
//! is; a ban on one process takes the account out of the room on the
//! other and keeps it out; `server admin create` makes an administrator
//! in Redis.

mod common;

use common::{
    Binary, Client, Partition, Redis, RedisCluster,
    api::{Api, PASSWORD, call, creds},
};
use serde_json::json;
use shared::{
    chat::{ErrorBody, ErrorCode, Msg, RoomInfo, RoomState, Welcome},
    rooms::{Invited, Removed},
};
use std::{ffi::OsStr, net::SocketAddr};
use tokio_tungstenite::tungstenite::{self, http::HeaderValue};

fn node(redis_flag: &str, redis: &str) -> Binary {
    Binary::start(&[
        OsStr::new(redis_flag),
        OsStr::new(redis),
        OsStr::new("--node-ttl-secs"),
        OsStr::new("2"),
    ])
}

fn addr(node: &Binary) -> SocketAddr {
    node.url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix("/socket"))
        .expect("ws://addr/socket")
        .parse()
        .expect("address")
}

fn api(node: &Binary) -> Api {
    let addr = addr(node);
    Api {
        addr,
        origin: format!("http://{addr}"),
    }
}

/// A socket upgrade carrying the sign-in cookie, from the node's own page.
async fn upgrade(node: &Binary, token: &str) -> Result<Client, u16> {
    let mut req = common::request(&node.url);
    let headers = req.headers_mut();
    headers.insert(
        "Cookie",
        HeaderValue::from_str(&format!("chat_session={token}")).expect("cookie"),
    );
    headers.insert(
        "Origin",
        HeaderValue::from_str(&format!("http://{}", addr(node))).expect("origin"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(Client::from_ws(ws)),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

async fn signed_socket(node: &Binary, token: &str) -> (Client, Welcome) {
    let mut client = upgrade(node, token).await.expect("upgrade");
    let welcome: Welcome = client.rich("hello", &json!({"v": 1})).await.expect("hello");
    (client, welcome)
}

async fn join(client: &mut Client, room: &str) -> Result<RoomState, ErrorBody> {
    client.rich("join", &json!({ "room": room })).await
}

async fn say(client: &mut Client, room: &str, text: &str, cid: &str) {
    let _: serde_json::Value = client
        .rich("say", &json!({"room": room, "text": text, "cid": cid}))
        .await
        .expect("say");
}

/// The next message in `room` (others skipped).
async fn next_in(client: &mut Client, room: &str) -> Msg {
    loop {
        let m = client.next_msg(room).await;
        if m.room == room {
            return m;
        }
    }
}

#[tokio::test]
async fn a_sign_out_on_one_process_closes_the_session_everywhere() {
    let redis = Redis::start();
    let (a, b) = (node("--redis", &redis.url()), node("--redis", &redis.url()));
    let token = api(&a).signup("Alice", PASSWORD).await.token();

    // Made on A, known on B: its cookie is Alice there too.
    let me = api(&b).me(&token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["username"], "Alice");
    let (mut on_a, welcome_a) = signed_socket(&a, &token).await;
    let (mut on_b, welcome_b) = signed_socket(&b, &token).await;
    assert_eq!(
        (welcome_a.nick.as_str(), welcome_b.nick.as_str()),
        ("Alice", "Alice")
    );
    // A guest on B cannot take the name made on A, in any case.
    let mut guest = Client::connect(&b.url).await;
    let guest_welcome: Welcome = guest
        .rich("hello", &json!({"v": 1, "nick": "ALICE"}))
        .await
        .expect("hello");
    assert_ne!(guest_welcome.nick.to_lowercase(), "alice");

    // A second sign-in (kept), then signing out the first on A.
    let other = api(&b).signin("alice", PASSWORD).await.token();
    assert_eq!(api(&a).signout(&token).await.status, 204);
    for socket in [&mut on_a, &mut on_b] {
        assert_eq!(
            socket.close_reason().await,
            Some((1008, "signed out".to_owned())),
            "the session's sockets close on both processes"
        );
    }
    // The old cookie opens nothing on either process.
    for n in [&a, &b] {
        assert_eq!(api(n).me(&token).await.status, 401);
        let mut stale = upgrade(n, &token).await.expect("upgrade");
        let welcome: Welcome = stale
            .rich("hello", &json!({"v": 1, "nick": "Alice"}))
            .await
            .expect("hello");
        assert_ne!(welcome.nick, "Alice", "a dead cookie is nobody");
    }
    // The other session lives on.
    assert_eq!(api(&a).me(&other).await.status, 200);

    // A password change on B ends every other session, on A too.
    let (mut kept_on_a, _) = signed_socket(&a, &other).await;
    let newest = api(&a).signin("alice", PASSWORD).await.token();
    let changed = api(&b)
        .post(
            "/api/password",
            &json!({"password": PASSWORD, "new_password": "plum-vexa-tq9-orbit"}).to_string(),
            &[("Cookie", &format!("chat_session={newest}"))],
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(
        kept_on_a.close_reason().await,
        Some((1008, "signed out".to_owned()))
    );
    assert_eq!(api(&a).me(&other).await.status, 401);
    assert_eq!(api(&a).me(&newest).await.status, 200);
    // The new password works on either process, the old one on neither.
    assert_eq!(api(&a).signin("alice", PASSWORD).await.status, 401);
    assert_eq!(
        api(&b).signin("alice", "plum-vexa-tq9-orbit").await.status,
        200
    );
}

#[tokio::test]
async fn a_sign_out_told_while_a_process_was_cut_off_closes_its_sockets_when_it_is_back() {
    let redis = Redis::start();
    let partition = Partition::to(redis.port).await;
    let a = node("--redis", &redis.url());
    let b = node("--redis", &partition.url());
    let token = api(&a).signup("Alice", PASSWORD).await.token();
    let (mut on_b, _) = signed_socket(&b, &token).await;

    // B cannot hear the sign-out: its socket is still open after it.
    partition.cut();
    assert_eq!(api(&a).signout(&token).await.status, 204);
    assert!(
        on_b.next_frame_or_end_within(std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "B heard nothing yet"
    );
    // Back, B checks its sign-ins again and closes the ended one.
    partition.restore();
    assert_eq!(
        on_b.close_reason().await,
        Some((1008, "signed out".to_owned()))
    );
}

/// Ann on A, Bob and Cyd on B: a private room, an invitation, a direct
/// message and a ban, each across the two processes.
async fn private_rooms_and_bans_across(a: &Binary, b: &Binary) {
    let (ann_t, bob_t, cyd_t) = (
        api(a).signup("ann", PASSWORD).await.token(),
        api(b).signup("bob", PASSWORD).await.token(),
        api(a).signup("cyd", PASSWORD).await.token(),
    );
    let (mut ann, _) = signed_socket(a, &ann_t).await;
    let (mut bob, _) = signed_socket(b, &bob_t).await;
    let (mut cyd, _) = signed_socket(b, &cyd_t).await;

    // A private room made on A.
    let plans: RoomState = ann
        .rich("create", &json!({"title": "Plans"}))
        .await
        .expect("create");
    let room = plans.room.clone();
    say(&mut ann, &room, "meet at noon", "a1").await;
    assert_eq!(next_in(&mut ann, &room).await.text, "meet at noon");
    // Cyd, on B, neither sees it nor gets in, exactly as if it did not exist.
    let listed: Vec<RoomInfo> = cyd.rich("rooms", &json!({})).await.expect("rooms");
    assert!(listed.iter().all(|r| r.room != room));
    let refused = join(&mut cyd, &room).await.expect_err("not invited");
    let unknown = join(&mut cyd, "p-0123456789abcdef")
        .await
        .expect_err("no such room");
    assert_eq!(refused.code, ErrorCode::NoSuchRoom);
    assert_eq!(
        refused.message.replace(&room, "?"),
        unknown.message.replace("p-0123456789abcdef", "?")
    );

    // Ann invites Bob: his socket on B hears it, he joins there and reads.
    let _: serde_json::Value = ann
        .rich("invite", &json!({"room": room, "user": "bob"}))
        .await
        .expect("invite");
    let invited: Invited = bob.event_json("invited").await;
    assert_eq!(
        (invited.room.as_str(), invited.by.as_str()),
        (room.as_str(), "ann")
    );
    let state = join(&mut bob, &room).await.expect("invited: joins");
    assert!(state.history.iter().any(|m| m.text == "meet at noon"));
    say(&mut bob, &room, "noon it is", "b1").await;
    assert_eq!(next_in(&mut ann, &room).await.text, "noon it is");
    // Still nothing for Cyd.
    assert_eq!(
        join(&mut cyd, &room).await.expect_err("still out").code,
        ErrorCode::NoSuchRoom
    );

    // A direct message opened from A reaches Bob on B.
    let dm: RoomState = ann.rich("dm", &json!({"user": "bob"})).await.expect("dm");
    let invited: Invited = bob.event_json("invited").await;
    assert_eq!(invited.room, dm.room);
    join(&mut bob, &dm.room).await.expect("his direct message");
    say(&mut ann, &dm.room, "psst", "a2").await;
    assert_eq!(next_in(&mut bob, &dm.room).await.text, "psst");

    // Ann's public room; Cyd joins it on B; Ann bans her from A.
    join(&mut ann, "hall").await.expect("hall");
    join(&mut cyd, "hall").await.expect("hall");
    let _: serde_json::Value = ann
        .rich("ban", &json!({"room": "hall", "user": "cyd"}))
        .await
        .expect("ann owns the hall");
    let removed: Removed = cyd.event_json("removed").await;
    assert_eq!((removed.room.as_str(), removed.banned), ("hall", true));
    let again = join(&mut cyd, "hall").await.expect_err("banned");
    assert_eq!(again.code, ErrorCode::Forbidden);
    // From a new sign-in on the other process too.
    let fresh = api(a).signin("cyd", PASSWORD).await.token();
    let (mut cyd_on_a, _) = signed_socket(a, &fresh).await;
    assert_eq!(
        join(&mut cyd_on_a, "hall").await.expect_err("banned").code,
        ErrorCode::Forbidden
    );
    // The record is shared: Ann reads it whichever process she is on.
    let (mut ann_on_b, _) = signed_socket(b, &ann_t).await;
    let actions: Vec<shared::rooms::ActionInfo> = ann_on_b
        .rich("actions", &json!({"room": "hall"}))
        .await
        .expect("actions");
    assert_eq!(
        (actions[0].what.as_str(), actions[0].whom.as_str()),
        ("ban", "cyd")
    );

    // Search reads every process's messages from Redis: Bob finds the
    // private room's words, Cyd does not.
    let search = |q: &'static str| json!({ "q": q });
    let found: Vec<Msg> = bob.rich("search", &search("noon")).await.expect("search");
    let mut texts: Vec<&str> = found.iter().map(|m| m.text.as_str()).collect();
    texts.sort_unstable();
    assert_eq!(texts, ["meet at noon", "noon it is"]);
    let outside: Vec<Msg> = cyd.rich("search", &search("noon")).await.expect("search");
    assert!(outside.is_empty(), "{outside:?}");
}

#[tokio::test]
async fn private_rooms_invitations_and_bans_reach_across_processes() {
    let redis = Redis::start();
    let (a, b) = (node("--redis", &redis.url()), node("--redis", &redis.url()));
    private_rooms_and_bans_across(&a, &b).await;
}

#[tokio::test]
async fn accounts_and_rooms_work_on_a_sharded_redis_cluster() {
    let cluster = RedisCluster::start();
    let seeds = cluster.seeds();
    let (a, b) = (
        node("--redis-cluster", &seeds),
        node("--redis-cluster", &seeds),
    );
    private_rooms_and_bans_across(&a, &b).await;
}

#[tokio::test]
async fn admin_create_makes_an_administrator_in_redis() {
    use std::io::Write;
    let redis = Redis::start();
    let mut admin = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["admin", "create", "root", "--redis", &redis.url()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("server admin");
    admin
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    let out = admin.wait_with_output().expect("done");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "administrator 'root' created in Redis"
    );

    // Every process knows the administrator.
    let server = node("--redis", &redis.url());
    let reply = call(
        addr(&server),
        "POST",
        "/api/signin",
        &[("Origin", &api(&server).origin)],
        &creds("root", PASSWORD),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let me = api(&server).me(&reply.token()).await.json();
    assert_eq!(
        (me["username"].as_str(), me["admin"].as_bool()),
        (Some("root"), Some(true))
    );
}

/// An attack on the search bound (`--search-running 1`): while Redis
/// holds every command (a paused Redis stands for a slow search), one
/// search is in flight and a second, from another connection, answers
/// "busy" at once.
#[tokio::test]
async fn searches_past_the_bound_answer_busy_at_once() {
    let redis = Redis::start();
    let server = Binary::start(&[
        OsStr::new("--redis"),
        OsStr::new(&redis.url()),
        OsStr::new("--search-running"),
        OsStr::new("1"),
    ]);
    let mut clients = Vec::new();
    for nick in ["s1", "s2"] {
        let mut c = Client::connect(&server.url).await;
        let _: Welcome = c
            .rich("hello", &json!({"v": 1, "nick": nick}))
            .await
            .expect("hello");
        clients.push(c);
    }
    assert!(
        redis
            .cli(&["CLIENT", "PAUSE", "3000", "ALL"])
            .contains("OK")
    );
    let query = serde_json::to_vec(&json!({"q": "anything"})).expect("json");
    clients[0].request("search", query).await;
    // The first holds the one slot (waiting on Redis); the second is
    // refused at once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refused = clients[1]
        .rich::<Vec<Msg>>("search", &json!({"q": "anything"}))
        .await
        .expect_err("busy");
    assert_eq!(refused.code, ErrorCode::Unavailable);
    assert!(refused.message.contains("busy"), "{}", refused.message);
    let _ = redis.cli(&["CLIENT", "UNPAUSE"]);
}
