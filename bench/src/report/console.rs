//! The lines printed as the runs go: one per run, one for this server's
//! `/metrics`, one per cluster run.

use crate::{client::Profile, process::Kind};
use serde_json::Value;

/// One run in one line.
pub fn human(scenario: &str, kind: Kind, profile: Profile, data: &Value) -> String {
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
pub fn metrics_line(m: &Value) -> String {
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

/// One cluster run in one line.
pub fn cluster_line(scenario: &str, processes: usize, data: &Value) -> String {
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
