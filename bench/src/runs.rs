//! One run of the matrix: start the server (or the cluster and its
//! Redis, or both for search), run the scenario, read `/metrics`, stop
//! everything.

use crate::{
    client::Profile,
    matrix::{Sizes, load_of, server_args},
    process::{Kind, RedisProc, ServerProc, binary_path},
    scenario::{self, Corpus, Load, Pace},
};
use serde_json::{Value, json};

/// What `/metrics` said at the end of a run (this server only).
async fn metrics(server: &ServerProc) -> Value {
    let Some(text) = server.http_get("/metrics").await else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for line in text.lines() {
        if line.starts_with('#') || line.contains("_bucket{") {
            continue;
        }
        if let Some((name, value)) = line.split_once(' ')
            && let Ok(v) = value.parse::<f64>()
        {
            out.insert(name.to_owned(), json!(v));
        }
    }
    Value::Object(out)
}

/// One run: a fresh server of `kind`, `scenario` against it, and (this
/// server) what its `/metrics` said; the server is stopped after.
pub async fn run_one(
    scenario: &'static str,
    kind: Kind,
    profile: Profile,
    sizes: &Sizes,
    bin_dir: Option<&std::path::Path>,
    scratch: &std::path::Path,
) -> anyhow::Result<Value> {
    let binary = binary_path(bin_dir, kind)?;
    let durable = (scenario == "storm" && kind == Kind::Ours)
        .then(|| scratch.join(format!("storm-{}", profile.name())));
    if let Some(d) = &durable {
        let _ = std::fs::remove_dir_all(d);
    }
    let mut server = ServerProc::start(
        kind,
        &binary,
        "127.0.0.1:0",
        &server_args(kind, durable.as_deref()),
    )
    .await?;
    let data = match scenario {
        "fanout" | "latency" => serde_json::to_value(
            scenario::fanout(&server, profile, load_of(scenario, sizes)).await?,
        )?,
        "idle" => serde_json::to_value(scenario::idle(&server, profile, sizes.idle).await?)?,
        "slow" => {
            let load = Load {
                clients: sizes.slow_clients,
                stuck: 0,
                messages: sizes.slow_messages,
                bytes: sizes.slow_bytes,
                pace: Pace::Flood,
                deadline: sizes.deadline,
            };
            let none = scenario::fanout(&server, profile, load).await?;
            // A fresh server for the second half, so both start alike.
            server.kill().await;
            server =
                ServerProc::start(kind, &binary, "127.0.0.1:0", &server_args(kind, None)).await?;
            let with = scenario::fanout(
                &server,
                profile,
                Load {
                    stuck: sizes.stuck,
                    ..load
                },
            )
            .await?;
            let ratio = with.per_sec / none.per_sec.max(1e-9);
            json!({"none_stuck": none, "with_stuck": with, "healthy_ratio": ratio})
        }
        "storm" => serde_json::to_value(
            scenario::storm(
                &mut server,
                profile,
                sizes.storm_attempts,
                sizes.storm_clients,
            )
            .await?,
        )?,
        other => anyhow::bail!("unknown scenario {other}"),
    };
    let mut data = data;
    if kind == Kind::Ours
        && let Value::Object(map) = &mut data
    {
        map.insert("metrics".into(), metrics(&server).await);
    }
    server.kill().await;
    if let Some(d) = &durable {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(data)
}

/// One cluster run: a fresh `redis-server`, `processes` servers in cluster
/// mode, the room's clients (rich) spread over them.
pub async fn cluster_run(
    scenario: &str,
    processes: usize,
    sizes: &Sizes,
    bin_dir: Option<&std::path::Path>,
) -> anyhow::Result<Value> {
    let mut redis = RedisProc::start().await?;
    let binary = binary_path(bin_dir, Kind::Ours)?;
    let mut args = server_args(Kind::Ours, None);
    // Its Redis keeps nothing on disk (the run measures the cluster, not
    // the disk), which the server refuses unless told it is intended.
    args.extend([
        "--redis".to_owned(),
        redis.url(),
        "--redis-allow-lossy".to_owned(),
    ]);
    let mut servers = Vec::with_capacity(processes);
    for _ in 0..processes {
        servers.push(ServerProc::start(Kind::Ours, &binary, "127.0.0.1:0", &args).await?);
    }
    let redis_before = redis.cpu_seconds();
    let refs: Vec<&ServerProc> = servers.iter().collect();
    let fan = scenario::fanout_across(&refs, Profile::Rich, load_of(scenario, sizes)).await?;
    let redis_cpu = redis.cpu_seconds() - redis_before;
    let rss: u64 = servers.iter().map(ServerProc::rss_bytes).sum();
    for s in &mut servers {
        s.kill().await;
    }
    redis.kill().await;
    let mut data = serde_json::to_value(fan)?;
    data["processes"] = json!(processes);
    data["redis_cpu_secs"] = json!(redis_cpu);
    data["servers_rss_bytes"] = json!(rss);
    Ok(data)
}

/// The search run: this server on SQLite (a fresh data directory) and,
/// beside it, in cluster mode on a fresh `redis-server`, both filled with
/// the same corpus and searched in turn.
pub async fn search_run(sizes: &Sizes, bin_dir: Option<&std::path::Path>) -> anyhow::Result<Value> {
    let binary = binary_path(bin_dir, Kind::Ours)?;
    let corpus = Corpus {
        rooms: sizes.search_rooms,
        per_room: sizes.search_per_room,
    };
    // Each filler is in every room, and in the lobby.
    let rooms = [
        "--max-rooms-per-connection".to_owned(),
        (corpus.rooms + 1).max(32).to_string(),
    ];
    let dir = std::env::temp_dir().join(format!("chat-bench-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = async {
        let mut args = server_args(Kind::Ours, Some(&dir));
        args.extend(rooms.iter().cloned());
        let mut sqlite = ServerProc::start(Kind::Ours, &binary, "127.0.0.1:0", &args).await?;
        let mut redis = RedisProc::start().await?;
        let mut args = server_args(Kind::Ours, None);
        // As in the cluster runs: a Redis that keeps nothing on disk, on purpose.
        args.extend([
            "--redis".to_owned(),
            redis.url(),
            "--redis-allow-lossy".to_owned(),
        ]);
        args.extend(rooms.iter().cloned());
        let mut cluster = ServerProc::start(Kind::Ours, &binary, "127.0.0.1:0", &args).await?;
        let result = scenario::search(&sqlite, &cluster, corpus, sizes.search_samples).await;
        sqlite.kill().await;
        cluster.kill().await;
        redis.kill().await;
        result
    };
    let result = run.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(serde_json::to_value(result?)?)
}
