//! `bench`: runs the whole matrix — every scenario against this server
//! (seed and rich profiles) and the two baselines (seed profile), one after
//! another in the same invocation — prints a human line and a JSON line per
//! run, and writes `results.md`, `results.json` and SVG charts.
//!
//! ```text
//! bench [--quick] [--out DIR] [--bin-dir DIR] [--only fanout,latency,idle,slow,storm,cluster]
//!       [--servers ours,ours-rich,original,broadcast]
//! ```
//!
//! `cluster` runs this server in cluster mode against a `redis-server` it
//! starts: fan-out and latency with the room's clients spread over three
//! processes, then on one process, and prints the ratios.
//!
//! `--quick` runs every scenario at a tiny size (the test suite does this to
//! prove the harness works) and fails if a run errs or this server loses,
//! duplicates or reorders a message. The full run reports; it asserts no
//! performance target.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::Context;
use bench::{
    arg_flag, arg_value,
    client::Profile,
    process::{Kind, RedisProc, ServerProc, binary_path},
    report::{self, Row},
    scenario::{self, Load, Pace},
};
use serde_json::{Value, json};
use std::{path::PathBuf, time::Duration};

struct Sizes {
    fanout_clients: usize,
    fanout_messages: u32,
    bytes: usize,
    latency_clients: usize,
    latency_every: Duration,
    latency_secs: u32,
    idle: usize,
    slow_clients: usize,
    stuck: usize,
    slow_messages: u32,
    slow_bytes: usize,
    storm_attempts: usize,
    storm_clients: usize,
    deadline: Duration,
}

const FULL: Sizes = Sizes {
    fanout_clients: 1_000,
    fanout_messages: 10_000,
    bytes: 100,
    latency_clients: 1_000,
    latency_every: Duration::from_millis(10),
    latency_secs: 10,
    idle: 10_000,
    slow_clients: 1_000,
    stuck: 10,
    slow_messages: 10_000,
    // 10 MB per client: more than a stuck client's socket buffers and its
    // outbox can hold, so the server has to deal with it.
    slow_bytes: 1_000,
    storm_attempts: 5_000,
    storm_clients: 1_000,
    deadline: Duration::from_secs(120),
};

const QUICK: Sizes = Sizes {
    fanout_clients: 20,
    fanout_messages: 300,
    bytes: 100,
    latency_clients: 10,
    latency_every: Duration::from_millis(10),
    latency_secs: 1,
    idle: 200,
    slow_clients: 20,
    stuck: 2,
    slow_messages: 300,
    slow_bytes: 100,
    storm_attempts: 200,
    storm_clients: 20,
    deadline: Duration::from_secs(30),
};

/// Which servers and profiles each scenario runs with.
const TARGETS: [(Kind, Profile); 4] = [
    (Kind::Ours, Profile::Seed),
    (Kind::Ours, Profile::Rich),
    (Kind::Original, Profile::Seed),
    (Kind::Broadcast, Profile::Seed),
];

fn server_args(kind: Kind, durable_dir: Option<&std::path::Path>) -> Vec<String> {
    if kind != Kind::Ours {
        return Vec::new();
    }
    let mut args: Vec<String> = [
        "--rate-limit",
        "0",
        "--max-connections",
        "30000",
        "--max-rooms",
        "30000",
        // Every load client is 127.0.0.1, and idle ones say nothing.
        "--max-connections-per-ip",
        "0",
        "--rooms-per-ip-per-minute",
        "0",
        "--sessions-per-ip-per-minute",
        "0",
        "--first-frame-timeout-secs",
        "3600",
        // The rich sender keeps 256 `say`s in flight.
        "--max-inflight",
        "1024",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Ok(extra) = std::env::var("BENCH_SERVER_ARGS") {
        args.extend(extra.split_whitespace().map(str::to_owned));
    }
    match durable_dir {
        Some(dir) => {
            args.push("--data-dir".into());
            args.push(dir.display().to_string());
        }
        None => args.push("--in-memory".into()),
    }
    args
}

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

fn human(scenario: &str, kind: Kind, profile: Profile, data: &Value) -> String {
    let f = |k: &str| data.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let who = format!("{scenario:<8} {:<9} {:<4}", kind.name(), profile.name());
    if let Some(e) = data.get("error") {
        return format!("{who}: error: {e}");
    }
    match scenario {
        "fanout" => format!(
            "{who}: {:>12.0} deliveries/s  ({} clients × {} msgs, {:.2} s)  lost {} dup {} reordered {}  server CPU {:.2} s",
            f("per_sec"),
            f("clients"),
            f("messages"),
            f("secs"),
            f("lost"),
            f("duplicates"),
            f("reordered"),
            f("server_cpu_secs")
        ),
        "latency" => {
            let p = |k: &str| {
                data["latency_us"]
                    .get(k)
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN)
                    / 1000.0
            };
            format!(
                "{who}: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples, lost {})",
                p("p50"),
                p("p90"),
                p("p99"),
                p("max"),
                data["latency_us"]["n"],
                f("lost")
            )
        }
        "idle" => format!(
            "{who}: {:.1} KiB per connection ({} connections, {:.1} s to open)  CPU after close {:.1}%",
            f("kib_per_conn"),
            f("connections"),
            f("connect_secs"),
            f("cpu_after_close_pct")
        ),
        "slow" => format!(
            "{who}: healthy keep {:.1}% of their rate with {} stuck ({:.0} vs {:.0} deliveries/s)",
            f("healthy_ratio") * 100.0,
            data["with_stuck"]["stuck"],
            data["with_stuck"]["per_sec"].as_f64().unwrap_or(f64::NAN),
            data["none_stuck"]["per_sec"].as_f64().unwrap_or(f64::NAN)
        ),
        "storm" => format!(
            "{who}: {:.0} connections/s ({} opened, {} errors)  {} clients back {:.2} s after a restart, {} recovered",
            f("per_sec"),
            f("opened"),
            f("errors"),
            f("reconnect_clients"),
            f("reconnect_secs"),
            f("recovered")
        ),
        _ => data.to_string(),
    }
}

/// What this server's `/metrics` said, in one line.
fn metrics_line(m: &Value) -> String {
    let f = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let count = f("chat_fanout_seconds_count");
    let mean_ms = if count > 0.0 {
        f("chat_fanout_seconds_sum") / count * 1000.0
    } else {
        0.0
    };
    format!(
        "         /metrics: {:.0} in, {:.0} out ({:.1} MB), {:.0} slow-consumer disconnects, {:.0} rate-limited, fan-out {:.0} messages (mean {:.2} ms)",
        f("chat_messages_in_total"),
        f("chat_messages_out_total"),
        f("chat_bytes_out_total") / 1e6,
        f("chat_slow_consumer_disconnects_total"),
        f("chat_rate_limited_total"),
        count,
        mean_ms
    )
}

async fn run_one(
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

/// Loads of the fan-out and latency scenarios.
fn load_of(scenario: &str, sizes: &Sizes) -> Load {
    match scenario {
        "latency" => Load {
            clients: sizes.latency_clients,
            stuck: 0,
            messages: u32::try_from(sizes.latency_every.as_millis())
                .map_or(0, |t| sizes.latency_secs * 1000 / t.max(1)),
            bytes: sizes.bytes,
            pace: Pace::Every(sizes.latency_every),
            deadline: sizes.deadline,
        },
        _ => Load {
            clients: sizes.fanout_clients,
            stuck: 0,
            messages: sizes.fanout_messages,
            bytes: sizes.bytes,
            pace: Pace::Flood,
            deadline: sizes.deadline,
        },
    }
}

/// One cluster run: a fresh `redis-server`, `processes` servers in cluster
/// mode, the room's clients (rich) spread over them.
async fn cluster_run(
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

fn cluster_line(scenario: &str, processes: usize, data: &Value) -> String {
    let who = format!(
        "cluster  {scenario:<8} {processes} process{}",
        if processes == 1 { " " } else { "es" }
    );
    if let Some(e) = data.get("error") {
        return format!("{who}: error: {e}");
    }
    let f = |k: &str| data.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let p99 = data["latency_us"]["p99"].as_f64().map(|v| v / 1000.0);
    format!(
        "{who}: {:>10.0} deliveries/s{}  lost {} dup {} reordered {} refused {}  servers CPU {:.2} s, redis CPU {:.2} s",
        f("per_sec"),
        p99.map(|p| format!("  p99 {p:.2} ms")).unwrap_or_default(),
        f("lost"),
        f("duplicates"),
        f("reordered"),
        f("refused"),
        f("server_cpu_secs"),
        f("redis_cpu_secs"),
    )
}

/// The cluster section of `results.md`, with the 3-vs-1 ratios.
fn cluster_markdown(runs: &[(&str, usize, Value)]) -> String {
    let get = |scenario: &str, n: usize| {
        runs.iter()
            .find(|(s, p, _)| *s == scenario && *p == n)
            .map(|(_, _, d)| d)
    };
    let num = |d: Option<&Value>, k: &str| d.and_then(|d| d.get(k)).and_then(Value::as_f64);
    let p99 = |d: Option<&Value>| {
        d.and_then(|d| d["latency_us"]["p99"].as_f64())
            .map(|v| v / 1000.0)
    };
    let show =
        |v: Option<f64>, digits: usize| v.map_or("—".to_owned(), |v| format!("{v:.digits$}"));
    let mut md = String::from(
        "## Cluster mode (Redis)\n\nThe same fan-out and latency loads (rich profile, one room) with the room's clients spread over three server processes sharing one `redis-server`, against one process in cluster mode. Every process, Redis and the load generator share this machine's two cores.\n\n| processes | fan-out deliveries/s | latency p99 (ms) | servers CPU (s, fan-out) | redis CPU (s, fan-out) |\n|---|---:|---:|---:|---:|\n",
    );
    for n in [1usize, 3] {
        md += &format!(
            "| {n} | {} | {} | {} | {} |\n",
            show(num(get("fanout", n), "per_sec"), 0),
            show(p99(get("latency", n)), 2),
            show(num(get("fanout", n), "server_cpu_secs"), 2),
            show(num(get("fanout", n), "redis_cpu_secs"), 2),
        );
    }
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    md += &format!(
        "\n3 processes ÷ 1 process: fan-out throughput **{}×**, p99 latency **{}×**.\n",
        show(
            ratio(
                num(get("fanout", 3), "per_sec"),
                num(get("fanout", 1), "per_sec")
            ),
            2
        ),
        show(ratio(p99(get("latency", 3)), p99(get("latency", 1))), 2),
    );
    md
}

/// Problems that make a quick run fail: errors, and this server losing,
/// duplicating or reordering messages or not recovering.
fn quick_problems(rows: &[Row]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in rows {
        let who = format!("{} {} {}", r.scenario, r.server, r.profile);
        if let Some(e) = r.data.get("error") {
            problems.push(format!("{who}: {e}"));
            continue;
        }
        if r.server != "ours" {
            continue;
        }
        let runs: Vec<&Value> = match r.scenario {
            "fanout" | "latency" => vec![&r.data],
            "slow" => vec![&r.data["none_stuck"], &r.data["with_stuck"]],
            _ => vec![],
        };
        for run in runs {
            for k in ["lost", "duplicates", "reordered", "refused"] {
                if run[k].as_f64().unwrap_or(1.0) != 0.0 {
                    problems.push(format!("{who}: {k} = {}", run[k]));
                }
            }
        }
        if r.scenario == "storm"
            && r.profile == "rich"
            && r.data["recovered"] != r.data["reconnect_clients"]
        {
            problems.push(format!(
                "{who}: recovered {} of {}",
                r.data["recovered"], r.data["reconnect_clients"]
            ));
        }
    }
    problems
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = arg_flag("--quick");
    // Thousands of sockets here and in the servers (children inherit it).
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => println!("file descriptor limit: {n}"),
        Err(e) => eprintln!("cannot raise the file descriptor limit: {e}"),
    }
    let sizes = if quick { &QUICK } else { &FULL };
    let out_dir = PathBuf::from(arg_value("--out").unwrap_or_else(|| {
        if quick {
            "target/bench-quick"
        } else {
            "bench/results"
        }
        .into()
    }));
    let bin_dir = arg_value("--bin-dir").map(PathBuf::from);
    let only: Option<Vec<String>> =
        arg_value("--only").map(|s| s.split(',').map(str::to_owned).collect());
    let servers: Option<Vec<String>> =
        arg_value("--servers").map(|s| s.split(',').map(str::to_owned).collect());
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let scratch = std::env::temp_dir().join(format!("chat-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;

    let mut rows = Vec::new();
    for scenario in ["fanout", "latency", "idle", "slow", "storm"] {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|s| s == scenario))
        {
            continue;
        }
        for (kind, profile) in TARGETS {
            let who = format!("{}-{}", kind.name(), profile.name());
            if servers
                .as_ref()
                .is_some_and(|o| !o.iter().any(|s| *s == who || s == kind.name()))
            {
                continue;
            }
            let data =
                match run_one(scenario, kind, profile, sizes, bin_dir.as_deref(), &scratch).await {
                    Ok(d) => d,
                    Err(e) => json!({"error": format!("{e:#}")}),
                };
            println!("{}", human(scenario, kind, profile, &data));
            if let Some(m) = data.get("metrics").filter(|m| m.is_object()) {
                println!("{}", metrics_line(m));
            }
            let mut line =
                json!({"scenario": scenario, "server": kind.name(), "profile": profile.name()});
            line["result"] = data.clone();
            println!("{line}");
            rows.push(Row {
                scenario,
                server: kind.name(),
                label: kind.label(),
                profile: profile.name(),
                data,
            });
            // Let sockets in TIME_WAIT and the previous process's exit settle.
            tokio::time::sleep(Duration::from_millis(if quick { 100 } else { 1_000 })).await;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let mut cluster_runs: Vec<(&str, usize, Value)> = Vec::new();
    if only
        .as_ref()
        .is_none_or(|o| o.iter().any(|s| s == "cluster"))
    {
        for scenario in ["fanout", "latency"] {
            for processes in [3usize, 1] {
                let data = match cluster_run(scenario, processes, sizes, bin_dir.as_deref()).await {
                    Ok(d) => d,
                    Err(e) => json!({"error": format!("{e:#}")}),
                };
                println!("{}", cluster_line(scenario, processes, &data));
                println!(
                    "{}",
                    json!({"scenario": format!("cluster-{scenario}"), "server": "ours", "profile": "rich", "processes": processes, "result": data})
                );
                cluster_runs.push((scenario, processes, data));
                tokio::time::sleep(Duration::from_millis(if quick { 100 } else { 1_000 })).await;
            }
        }
        let md = cluster_markdown(&cluster_runs);
        println!("\n{md}");
    }

    let header = format!(
        "## Results ({})\n\nFan-out: {} clients × {} messages of {} bytes. Latency: {} clients, one message every {} ms for {} s. Idle: {} connections. Slow consumers: {} stuck among {}, {} messages of {} bytes. Storm: up to {} connections, {} clients across a restart. Each server runs as its own process on 127.0.0.1, one after another; the load generator shares the machine's cores with it.",
        if quick {
            "quick run: sizes too small to mean anything"
        } else {
            "full run"
        },
        sizes.fanout_clients,
        sizes.fanout_messages,
        sizes.bytes,
        sizes.latency_clients,
        sizes.latency_every.as_millis(),
        sizes.latency_secs,
        sizes.idle,
        sizes.stuck,
        sizes.slow_clients,
        sizes.slow_messages,
        sizes.slow_bytes,
        sizes.storm_attempts,
        sizes.storm_clients,
    );
    let mut md = report::markdown(&rows, &header);
    if !cluster_runs.is_empty() {
        md += "\n";
        md += &cluster_markdown(&cluster_runs);
    }
    std::fs::write(out_dir.join("results.md"), &md)?;
    let mut all: Vec<Value> = rows
        .iter()
        .map(|r| json!({"scenario": r.scenario, "server": r.server, "profile": r.profile, "result": r.data}))
        .collect();
    all.extend(cluster_runs.iter().map(|(scenario, processes, data)| {
        json!({"scenario": format!("cluster-{scenario}"), "server": "ours", "profile": "rich", "processes": processes, "result": data})
    }));
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&all)?,
    )?;
    for (name, svg) in report::charts(&rows) {
        std::fs::write(out_dir.join(name), svg)?;
    }
    println!("\n{md}");
    println!("results written to {}", out_dir.display());
    if quick {
        let mut problems = quick_problems(&rows);
        for (scenario, processes, data) in &cluster_runs {
            let who = format!("cluster {scenario} {processes} processes");
            if let Some(e) = data.get("error") {
                problems.push(format!("{who}: {e}"));
                continue;
            }
            for k in ["lost", "duplicates", "reordered", "refused"] {
                if data[k].as_f64().unwrap_or(1.0) != 0.0 {
                    problems.push(format!("{who}: {k} = {}", data[k]));
                }
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("the quick run found problems:\n  {}", problems.join("\n  "));
        }
    }
    Ok(())
}
