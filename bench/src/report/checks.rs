//! What makes a quick run fail: an error, or this server losing,
//! duplicating or reordering a message, or not recovering.

use super::Row;
use serde_json::Value;

/// Problems that make a quick run fail: errors, and this server losing,
/// duplicating or reordering messages or not recovering.
pub fn quick_problems(rows: &[Row]) -> Vec<String> {
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

/// The same for the cluster runs: `(scenario, processes, figures)`.
pub fn cluster_problems(runs: &[(&str, usize, Value)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (scenario, processes, data) in runs {
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
    problems
}
