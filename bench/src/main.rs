//! `bench`: runs the whole matrix — every scenario against this server
//! (seed and rich profiles) and the two baselines (seed profile), one after
//! another in the same invocation — prints a human line and a JSON line per
//! run, and writes `results.md`, `results.json` and SVG charts.
//!
//! ```text
//! bench [--quick] [--out DIR] [--bin-dir DIR] [--only fanout,latency,idle,slow,storm,cluster,signin,search]
//!       [--servers ours,ours-rich,original,broadcast]
//! ```
//!
//! `cluster` runs this server in cluster mode against a `redis-server` it
//! starts: fan-out and latency with the room's clients spread over three
//! processes, then on one process, and prints the ratios.
//!
//! `signin` times one sign-in, then runs the latency scenario on this
//! server without and with 50 wrong sign-ins per second (each a full
//! argon2id verification), interleaved, and prints the p99 ratio.
//!
//! `search` fills this server on SQLite (FTS5 index) and, beside it, in
//! cluster mode on a `redis-server` it starts (no index: each search reads
//! the streams) with the same rooms of messages, times each kind of query
//! on both through the socket and prints the cluster ÷ SQLite ratios; both
//! must answer as many results as the corpus holds.
//!
//! `--quick` runs every scenario at a tiny size (the test suite does this to
//! prove the harness works) and fails if a run errs, this server loses,
//! duplicates or reorders a message, or a search answers other results
//! than the corpus holds. The full run reports; it asserts no performance
//! target.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::Context;
use bench::{
    arg_flag, arg_value,
    matrix::{FULL, QUICK, TARGETS},
    report::{self, Row},
    runs::{cluster_run, run_one, search_run},
};
use serde_json::{Value, json};
use std::{path::PathBuf, time::Duration};

/// What the command line asks for.
struct Options {
    quick: bool,
    out_dir: PathBuf,
    bin_dir: Option<PathBuf>,
    /// `--only`: these scenarios (else all).
    only: Option<Vec<String>>,
    /// `--servers`: these servers, by name or `name-profile` (else all).
    servers: Option<Vec<String>>,
}

impl Options {
    fn from_args() -> Self {
        let quick = arg_flag("--quick");
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
        Self {
            quick,
            out_dir,
            bin_dir,
            only,
            servers,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Options {
        quick,
        out_dir,
        bin_dir,
        only,
        servers,
    } = Options::from_args();
    // Thousands of sockets here and in the servers (children inherit it).
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => println!("file descriptor limit: {n}"),
        Err(e) => eprintln!("cannot raise the file descriptor limit: {e}"),
    }
    let sizes = if quick { &QUICK } else { &FULL };
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
            println!("{}", report::human(scenario, kind, profile, &data));
            if let Some(m) = data.get("metrics").filter(|m| m.is_object()) {
                println!("{}", report::metrics_line(m));
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
                println!("{}", report::cluster_line(scenario, processes, &data));
                println!(
                    "{}",
                    json!({"scenario": format!("cluster-{scenario}"), "server": "ours", "profile": "rich", "processes": processes, "result": data})
                );
                cluster_runs.push((scenario, processes, data));
                tokio::time::sleep(Duration::from_millis(if quick { 100 } else { 1_000 })).await;
            }
        }
        let md = report::cluster_markdown(&cluster_runs);
        println!("\n{md}");
    }

    let mut signin_md = String::new();
    if only
        .as_ref()
        .is_none_or(|o| o.iter().any(|s| s == "signin"))
    {
        let data = match signin_run(sizes, quick, bin_dir.as_deref()).await {
            Ok(d) => d,
            Err(e) => json!({"error": format!("{e:#}")}),
        };
        signin_md = report::signin_markdown(&data);
        println!("{signin_md}");
        println!(
            "{}",
            json!({"scenario": "signin", "server": "ours", "profile": "rich", "result": data})
        );
        if quick && data.get("error").is_some() {
            anyhow::bail!("the quick sign-in run failed: {}", data["error"]);
        }
    }

    let mut search_data = None;
    if only
        .as_ref()
        .is_none_or(|o| o.iter().any(|s| s == "search"))
    {
        let data = match search_run(sizes, bin_dir.as_deref()).await {
            Ok(d) => d,
            Err(e) => json!({"error": format!("{e:#}")}),
        };
        println!("{}", report::search_markdown(&data));
        println!(
            "{}",
            json!({"scenario": "search", "server": "ours", "profile": "rich", "result": data})
        );
        search_data = Some(data);
    }

    let header = report::header(sizes, quick);
    let mut md = report::markdown(&rows, &header);
    if !cluster_runs.is_empty() {
        md += "\n";
        md += &report::cluster_markdown(&cluster_runs);
    }
    if !signin_md.is_empty() {
        md += "\n";
        md += &signin_md;
    }
    if let Some(data) = &search_data {
        md += "\n";
        md += &report::search_markdown(data);
    }
    std::fs::write(out_dir.join("results.md"), &md)?;
    let mut all: Vec<Value> = rows
        .iter()
        .map(|r| json!({"scenario": r.scenario, "server": r.server, "profile": r.profile, "result": r.data}))
        .collect();
    all.extend(cluster_runs.iter().map(|(scenario, processes, data)| {
        json!({"scenario": format!("cluster-{scenario}"), "server": "ours", "profile": "rich", "processes": processes, "result": data})
    }));
    all.extend(search_data.iter().map(
        |data| json!({"scenario": "search", "server": "ours", "profile": "rich", "result": data}),
    ));
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
        let mut problems = report::quick_problems(&rows);
        problems.extend(report::cluster_problems(&cluster_runs));
        problems.extend(search_data.iter().flat_map(report::search_problems));
        if !problems.is_empty() {
            anyhow::bail!("the quick run found problems:\n  {}", problems.join("\n  "));
        }
    }
    Ok(())
}

/// The sign-in scenario on a fresh server of ours that trusts 127.0.0.1 as
/// its proxy (so the flood can come from many addresses).
async fn signin_run(
    sizes: &bench::matrix::Sizes,
    quick: bool,
    bin_dir: Option<&std::path::Path>,
) -> anyhow::Result<Value> {
    use bench::process::{Kind, ServerProc, binary_path};
    let binary = binary_path(bin_dir, Kind::Ours)?;
    let mut args = bench::matrix::server_args(Kind::Ours, None);
    args.extend(["--trusted-proxy".to_owned(), "127.0.0.1".to_owned()]);
    let load = bench::matrix::load_of("latency", sizes);
    let (samples, rounds, rate) = if quick { (3, 1, 50) } else { (20, 3, 50) };
    let mut server = ServerProc::start(Kind::Ours, &binary, "127.0.0.1:0", &args).await?;
    let one = bench::scenario::one_signin(&server, samples).await;
    server.kill().await;
    let one = one?;
    // Each run on a fresh server (nothing left over from the one before),
    // quiet and flooded alternating.
    let mut pairs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut runs = Vec::with_capacity(2);
        for flood in [None, Some(rate)] {
            let mut server = ServerProc::start(Kind::Ours, &binary, "127.0.0.1:0", &args).await?;
            let run = bench::scenario::chat_latency(&server, load, flood).await;
            server.kill().await;
            runs.push(run?);
            tokio::time::sleep(Duration::from_millis(if quick { 100 } else { 1_000 })).await;
        }
        let flooded = runs.pop().unwrap_or_default();
        let quiet = runs.pop().unwrap_or_default();
        pairs.push(bench::scenario::Pair {
            quiet_us: quiet.0,
            flooded_us: flooded.0,
            flood: flooded.1,
        });
    }
    let result = bench::scenario::signin_summary(one, samples, rate, pairs);
    Ok(serde_json::to_value(result)?)
}
