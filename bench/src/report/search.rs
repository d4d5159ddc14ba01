//! The search scenario's table (SQLite's index vs cluster mode reading the
//! streams, query by query) and its problems: an error, or the servers
//! not answering the results the corpus holds.

use super::num;
use serde_json::Value;
use std::fmt::Write as _;

/// Markdown for the search scenario's result (or its error), with its
/// problems listed under the table.
pub fn search_markdown(data: &Value) -> String {
    if let Some(e) = data.get("error") {
        return format!("## Search\n\nThe run failed: {e}\n");
    }
    let f = |v: &Value| v.as_f64();
    let ms = |v: &Value| match v.as_f64() {
        Some(x) if x >= 100.0 => format!("{x:.0} ms"),
        Some(x) if x >= 10.0 => format!("{x:.1} ms"),
        Some(x) => format!("{x:.2} ms"),
        None => "–".into(),
    };
    let fill = |secs: &Value| {
        let per_sec = f(&data["messages"])
            .zip(f(secs))
            .map(|(m, s)| m / s.max(1e-9));
        format!(
            "{:.2} s ({} says/s)",
            f(secs).unwrap_or(0.0),
            num(per_sec, 0)
        )
    };
    let mut md = format!(
        "## Search\n\n{} rooms × {} messages = **{} messages**, the same in both servers (5–12 words each from a fixed vocabulary, by 4 authors, sent over 4 WebSocket connections); filling took {} on SQLite and {} in cluster mode. Each kind of query ran {} times per server from one client, one search at a time, the servers taking turns (after one untimed search each); results are capped at 50.\n\n| query | matching messages | results SQLite / cluster | SQLite p50 | SQLite p95 | cluster p50 | cluster p95 | cluster ÷ SQLite (p50) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        num(f(&data["rooms"]), 0),
        num(f(&data["per_room"]), 0),
        num(f(&data["messages"]), 0),
        fill(&data["fill_secs_sqlite"]),
        fill(&data["fill_secs_cluster"]),
        data["samples"],
    );
    for q in data["queries"].as_array().into_iter().flatten() {
        let results = |t: &Value| t["results"].as_u64().map_or("–".into(), |n| n.to_string());
        let _ = writeln!(
            md,
            "| {}: `{}` | {} | {} / {} | {} | {} | {} | {} | **{}×** |",
            q["label"].as_str().unwrap_or_default(),
            q["q"].as_str().unwrap_or_default(),
            num(f(&q["matching"]), 0),
            results(&q["sqlite"]),
            results(&q["cluster"]),
            ms(&q["sqlite"]["p50_ms"]),
            ms(&q["sqlite"]["p95_ms"]),
            ms(&q["cluster"]["p50_ms"]),
            ms(&q["cluster"]["p95_ms"]),
            num(
                f(&q["ratio_p50"]),
                if f(&q["ratio_p50"]) >= Some(10.0) {
                    0
                } else {
                    1
                }
            ),
        );
    }
    let problems = search_problems(data);
    if !problems.is_empty() {
        md += "\n**Problems:**\n\n";
        for p in problems {
            let _ = writeln!(md, "- {p}");
        }
    }
    md
}

/// Problems of a search run (a quick run fails on them): an error, a
/// refused search, results that do not match, or a server not answering
/// as many results as the corpus holds (at most the cap) or as the other.
pub fn search_problems(data: &Value) -> Vec<String> {
    if let Some(e) = data.get("error") {
        return vec![format!("search: {e}")];
    }
    let mut problems = Vec::new();
    for q in data["queries"].as_array().into_iter().flatten() {
        let who = format!("search `{}`", q["q"].as_str().unwrap_or_default());
        let (s, c) = (&q["sqlite"], &q["cluster"]);
        for (name, t) in [("SQLite", s), ("cluster", c)] {
            if let Some(e) = t["error"].as_str() {
                problems.push(format!("{who} on {name}: {e}"));
            }
            if t["wrong"].as_u64() != Some(0) {
                problems.push(format!(
                    "{who} on {name}: {} results do not match",
                    t["wrong"]
                ));
            }
            if t["results"] != q["expected"] {
                problems.push(format!(
                    "{who} on {name}: {} results, the corpus holds {}",
                    t["results"], q["expected"]
                ));
            }
        }
        if s["results"] != c["results"] {
            problems.push(format!(
                "{who}: SQLite answered {} results, cluster mode {}",
                s["results"], c["results"]
            ));
        }
    }
    if data["queries"].as_array().is_none_or(Vec::is_empty) {
        problems.push("search: no query ran".into());
    }
    problems
}
