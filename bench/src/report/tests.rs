//! Numbers, target verdicts and charts.

use super::*;
use serde_json::json;

fn row(scenario: &'static str, server: &'static str, profile: &'static str, data: Value) -> Row {
    Row {
        scenario,
        server,
        label: server,
        profile,
        data,
    }
}

#[test]
fn numbers_get_thousands_separators() {
    assert_eq!(num(Some(3_087_632.4), 0), "3,087,632");
    assert_eq!(num(Some(999.0), 0), "999");
    assert_eq!(num(Some(-1234.0), 0), "-1,234");
    assert_eq!(num(Some(7.56), 1), "7.6");
    assert_eq!(num(None, 1), "–");
}

#[test]
fn targets_are_judged_from_same_run_ratios() {
    let clean = json!({"per_sec": 600.0, "lost": 0, "duplicates": 0, "reordered": 0,
        "delivered": 6000.0, "server_cpu_secs": 3.0});
    let rows = vec![
        row("fanout", "ours", "seed", clean),
        row("fanout", "ours", "rich", json!({"per_sec": 200.0})),
        row("fanout", "original", "seed", json!({"per_sec": 100.0})),
        row(
            "fanout",
            "batched",
            "seed",
            json!({"per_sec": 700.0, "delivered": 7000.0, "server_cpu_secs": 2.0}),
        ),
        row("fanout", "broadcast", "seed", json!({"per_sec": 500.0})),
        row(
            "idle",
            "ours",
            "seed",
            json!({"kib_per_conn": 9.5, "cpu_after_close_pct": 0.0}),
        ),
        row("latency", "ours", "seed", json!({"error": "boom"})),
    ];
    let md = markdown(&rows, "## test");
    let line = |what: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {what}")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("fan-out ≥ 5× the original").ends_with("| met |"),
        "{md}"
    );
    assert!(
        line("fan-out ≥ 1.0× plain broadcast (fair").contains("not met"),
        "600 vs the fair baseline's 700: {md}"
    );
    assert!(
        line("deliveries per server CPU-second").contains("0.57×"),
        "2,000 vs 3,500 per CPU-second: {md}"
    );
    assert!(line("(for reference)").contains("1.20×"), "{md}");
    assert!(line("idle memory").contains("not met"), "{md}");
    assert!(line("latency p99").contains("not measured"), "{md}");
    assert!(
        line("rich profile").contains("not met"),
        "0.33× is outside 2×: {md}"
    );
    assert!(md.contains("error: boom"), "{md}");
}

#[test]
fn charts_are_svg_with_one_bar_per_run() {
    let rows = vec![
        row("fanout", "ours", "seed", json!({"per_sec": 600.0})),
        row("fanout", "original", "seed", json!({"per_sec": 100.0})),
    ];
    let charts = charts(&rows);
    let (_, fanout) = charts
        .iter()
        .find(|(name, _)| *name == "fanout.svg")
        .expect("fan-out chart");
    assert!(fanout.starts_with("<svg"));
    assert_eq!(fanout.matches("<rect x=").count(), 2);
}

#[test]
fn search_runs_report_servers_that_disagree() {
    let timing = |results: u64| json!({"samples": 3, "p50_ms": 1.0, "p95_ms": 2.0, "results": results, "wrong": 0});
    let run = |cluster: u64| {
        json!({"rooms": 4, "per_room": 200, "messages": 800, "samples": 3,
            "fill_secs_sqlite": 0.5, "fill_secs_cluster": 0.7,
            "queries": [{"label": "rare word", "q": "zephyr", "matching": 8, "expected": 8,
                "sqlite": timing(8), "cluster": timing(cluster), "ratio_p50": 1.0}]})
    };
    assert!(search_problems(&run(8)).is_empty());
    let md = search_markdown(&run(8));
    assert!(md.contains("| rare word: `zephyr` | 8 | 8 / 8 |"), "{md}");
    assert!(!md.contains("Problems"), "{md}");
    let problems = search_problems(&run(7));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(search_markdown(&run(7)).contains("**Problems:**"));
    assert_eq!(search_problems(&json!({"error": "boom"})).len(), 1);
}
