//! `results.md`: its header, the targets judged from same-run ratios, a
//! table per scenario, and the cluster section.

use super::{Row, find, ms, num, ratio};
use crate::matrix::Sizes;
use serde_json::Value;
use std::fmt::Write as _;

/// The header of `results.md`: what ran, at which sizes.
pub fn header(sizes: &Sizes, quick: bool) -> String {
    format!(
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
    )
}

/// A verdict line for one target.
fn target(
    out: &mut String,
    what: &str,
    value: Option<f64>,
    ok: impl Fn(f64) -> bool,
    shown: String,
) {
    let verdict = match value {
        Some(v) if ok(v) => "met",
        Some(_) => "**not met**",
        None => "not measured",
    };
    let _ = writeln!(out, "| {what} | {shown} | {verdict} |");
}

/// The Markdown results.
pub fn markdown(rows: &[Row], header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    let _ = writeln!(out, "### Targets (same-run ratios)\n");
    let _ = writeln!(out, "| target | measured | |\n|---|---|---|");
    let fan = |s: &str, p: &str| find(rows, "fanout", s, p).and_then(|r| r.f(&["per_sec"]));
    let ours_seed = fan("ours", "seed");
    let r_orig = ratio(ours_seed, fan("original", "seed"));
    target(
        &mut out,
        "fan-out ≥ 5× the original library",
        r_orig,
        |r| r >= 5.0,
        format!("{}×", num(r_orig, 2)),
    );
    let r_bc = ratio(ours_seed, fan("batched", "seed"));
    target(
        &mut out,
        "fan-out ≥ 1.0× plain broadcast (fair: batched writes, TCP_NODELAY)",
        r_bc,
        |r| r >= 1.0,
        format!("{}×", num(r_bc, 2)),
    );
    // Deliveries per server CPU-second: what each delivery costs.
    let per_cpu = |s: &str| {
        find(rows, "fanout", s, "seed").and_then(|r| {
            let cpu = r.f(&["server_cpu_secs"])?;
            (cpu > 0.0).then(|| r.f(&["delivered"]).unwrap_or(0.0) / cpu)
        })
    };
    let r_cpu = ratio(per_cpu("ours"), per_cpu("batched"));
    target(
        &mut out,
        "deliveries per server CPU-second ≥ 1.0× the fair baseline",
        r_cpu,
        |r| r >= 1.0,
        format!("{}×", num(r_cpu, 2)),
    );
    let r_naive = ratio(ours_seed, fan("broadcast", "seed"));
    target(
        &mut out,
        "(for reference) fan-out vs the naive broadcast (a flush per frame)",
        r_naive,
        |_| true,
        format!("{}×", num(r_naive, 2)),
    );
    let clean = find(rows, "fanout", "ours", "seed")
        .and_then(|r| Some(r.f(&["lost"])? + r.f(&["duplicates"])? + r.f(&["reordered"])?));
    target(
        &mut out,
        "fan-out: nothing lost, duplicated or reordered",
        clean,
        |c| c == 0.0,
        format!("{} problems", num(clean, 0)),
    );
    let p99 = |s: &str| find(rows, "latency", s, "seed").and_then(|r| r.f(&["latency_us", "p99"]));
    let r_lat = ratio(p99("ours"), p99("batched"));
    target(
        &mut out,
        "latency p99 ≤ 1.2× plain broadcast (fair)",
        r_lat,
        |r| r <= 1.2,
        format!("{}×", num(r_lat, 2)),
    );
    let kib = find(rows, "idle", "ours", "seed").and_then(|r| r.f(&["kib_per_conn"]));
    target(
        &mut out,
        "idle memory ≤ 8 KiB per connection",
        kib,
        |k| k <= 8.0,
        format!("{} KiB", num(kib, 1)),
    );
    let cpu = find(rows, "idle", "ours", "seed").and_then(|r| r.f(&["cpu_after_close_pct"]));
    target(
        &mut out,
        "CPU back to ~0% after they close",
        cpu,
        |c| c <= 2.0,
        format!("{}%", num(cpu, 1)),
    );
    let slow = find(rows, "slow", "ours", "seed").and_then(|r| r.f(&["healthy_ratio"]));
    target(
        &mut out,
        "slow consumers: healthy keep ≥ 90%",
        slow,
        |s| s >= 0.9,
        format!("{}%", num(slow.map(|s| s * 100.0), 1)),
    );
    let rich = ratio(fan("ours", "rich"), ours_seed);
    target(
        &mut out,
        "rich profile within 2× of seed",
        rich,
        |r| r >= 0.5,
        format!("{}×", num(rich, 2)),
    );

    let servers = |scenario: &'static str| rows.iter().filter(move |r| r.scenario == scenario);
    let err = |r: &Row| {
        r.data
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };

    let _ = writeln!(out, "\n### Fan-out\n");
    let _ = writeln!(
        out,
        "| server | profile | deliveries/s | lost | dup | reordered | complete clients | server CPU s |\n|---|---|---|---|---|---|---|---|"
    );
    for r in servers("fanout") {
        if let Some(e) = err(r) {
            let _ = writeln!(
                out,
                "| {} | {} | error: {e} | | | | | |",
                r.label, r.profile
            );
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} of {} | {} |",
            r.label,
            r.profile,
            num(r.f(&["per_sec"]), 0),
            num(r.f(&["lost"]), 0),
            num(r.f(&["duplicates"]), 0),
            num(r.f(&["reordered"]), 0),
            num(r.f(&["complete"]), 0),
            num(r.f(&["clients"]), 0),
            num(r.f(&["server_cpu_secs"]), 2),
        );
    }
    let _ = writeln!(out, "\n### Latency\n");
    let _ = writeln!(
        out,
        "| server | profile | p50 ms | p90 ms | p99 ms | max ms | lost |\n|---|---|---|---|---|---|---|"
    );
    for r in servers("latency") {
        if let Some(e) = err(r) {
            let _ = writeln!(out, "| {} | {} | error: {e} | | | | |", r.label, r.profile);
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.profile,
            ms(r.f(&["latency_us", "p50"])),
            ms(r.f(&["latency_us", "p90"])),
            ms(r.f(&["latency_us", "p99"])),
            ms(r.f(&["latency_us", "max"])),
            num(r.f(&["lost"]), 0),
        );
    }
    let _ = writeln!(out, "\n### Idle memory\n");
    let _ = writeln!(
        out,
        "| server | profile | connections | KiB per connection | server CPU after they close |\n|---|---|---|---|---|"
    );
    for r in servers("idle") {
        if let Some(e) = err(r) {
            let _ = writeln!(out, "| {} | {} | error: {e} | | |", r.label, r.profile);
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}% |",
            r.label,
            r.profile,
            num(r.f(&["connections"]), 0),
            num(r.f(&["kib_per_conn"]), 1),
            num(r.f(&["cpu_after_close_pct"]), 1),
        );
    }
    let _ = writeln!(out, "\n### Slow consumers\n");
    let _ = writeln!(
        out,
        "| server | profile | healthy deliveries/s, none stuck | with stuck clients | kept | lost (healthy) |\n|---|---|---|---|---|---|"
    );
    for r in servers("slow") {
        if let Some(e) = err(r) {
            let _ = writeln!(out, "| {} | {} | error: {e} | | | |", r.label, r.profile);
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({} stuck) | {}% | {} |",
            r.label,
            r.profile,
            num(r.f(&["none_stuck", "per_sec"]), 0),
            num(r.f(&["with_stuck", "per_sec"]), 0),
            num(r.f(&["with_stuck", "stuck"]), 0),
            num(r.f(&["healthy_ratio"]).map(|x| x * 100.0), 1),
            num(r.f(&["with_stuck", "lost"]), 0),
        );
    }
    let _ = writeln!(out, "\n### Connect storm and restart\n");
    let _ = writeln!(
        out,
        "| server | profile | connections/s | opened | errors | reconnect after restart | recovered |\n|---|---|---|---|---|---|---|"
    );
    for r in servers("storm") {
        if let Some(e) = err(r) {
            let _ = writeln!(out, "| {} | {} | error: {e} | | | | |", r.label, r.profile);
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} clients in {} s | {} |",
            r.label,
            r.profile,
            num(r.f(&["per_sec"]), 0),
            num(r.f(&["opened"]), 0),
            num(r.f(&["errors"]), 0),
            num(r.f(&["reconnect_clients"]), 0),
            num(r.f(&["reconnect_secs"]), 2),
            num(r.f(&["recovered"]), 0),
        );
    }
    out
}

/// The cluster section of `results.md`, with the 3-vs-1 ratios.
pub fn cluster_markdown(runs: &[(&str, usize, Value)]) -> String {
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
