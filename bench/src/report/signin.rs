//! The sign-in scenario's table: one sign-in's cost, and chat latency
//! with and without a flood of wrong sign-ins, pair by pair.

use serde_json::Value;

/// Markdown for the sign-in scenario's result (or its error).
pub fn signin_markdown(data: &Value) -> String {
    if let Some(e) = data.get("error") {
        return format!("## Sign-ins\n\nThe run failed: {e}\n");
    }
    let ms = |v: &Value| {
        v.as_f64()
            .map_or("—".to_owned(), |v| format!("{:.2}", v / 1000.0))
    };
    let mut md = format!(
        "## Sign-ins\n\nOne sign-in (right password, a fresh connection each, {} in a row): median **{:.1} ms**, p99 {:.1} ms. Chat latency (the latency load, rich profile) without and with {} wrong sign-ins per second, each from a new address for a new name so that no throttle applies and every one costs a full argon2id verification; quiet and flooded runs alternate, each on a fresh server.\n\n| pair | p99 quiet (ms) | p99 flooded (ms) | p50 quiet (ms) | p50 flooded (ms) | wrong sign-ins sent | verified (401) | queue full (503) | other |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        data["samples"],
        data["one_ms_p50"].as_f64().unwrap_or(0.0),
        data["one_ms_p99"].as_f64().unwrap_or(0.0),
        data["rate"],
    );
    for (i, pair) in data["pairs"].as_array().into_iter().flatten().enumerate() {
        let flood = &pair["flood"];
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            ms(&pair["quiet_us"]["p99"]),
            ms(&pair["flooded_us"]["p99"]),
            ms(&pair["quiet_us"]["p50"]),
            ms(&pair["flooded_us"]["p50"]),
            flood["sent"],
            flood["refused"],
            flood["busy"],
            flood["other"],
        );
    }
    md += &format!(
        "\nFlooded p99 ÷ quiet p99 (median of the pairs): **{:.2}×**.\n",
        data["p99_ratio"].as_f64().unwrap_or(0.0)
    );
    md
}
