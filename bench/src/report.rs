//! The results file: Markdown tables and SVG bar charts.

use serde_json::Value;
use std::fmt::Write as _;

/// One measured run.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name.
    pub scenario: &'static str,
    /// Server name (`ours`, `original`, `broadcast`).
    pub server: &'static str,
    /// Server label.
    pub label: &'static str,
    /// Profile name.
    pub profile: &'static str,
    /// The figures (or `{"error": ...}`).
    pub data: Value,
}

impl Row {
    fn f(&self, path: &[&str]) -> Option<f64> {
        let mut v = &self.data;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_f64()
    }
}

fn find<'a>(rows: &'a [Row], scenario: &str, server: &str, profile: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.scenario == scenario && r.server == server && r.profile == profile)
}

fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if digits == 0 => {
            // Thousands separators for big counts.
            let s = format!("{:.0}", x);
            let (sign, d) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
            let mut out = String::new();
            for (i, c) in d.chars().enumerate() {
                if i > 0 && (d.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            format!("{sign}{out}")
        }
        Some(x) => format!("{x:.digits$}"),
        None => "–".into(),
    }
}

fn ms(us: Option<f64>) -> String {
    num(us.map(|u| u / 1000.0), 2)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
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
    let r_bc = ratio(ours_seed, fan("broadcast", "seed"));
    target(
        &mut out,
        "fan-out ≥ 1.0× plain broadcast",
        r_bc,
        |r| r >= 1.0,
        format!("{}×", num(r_bc, 2)),
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
    let r_lat = ratio(p99("ours"), p99("broadcast"));
    target(
        &mut out,
        "latency p99 ≤ 1.2× plain broadcast",
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

/// A horizontal bar chart.
pub fn bar_chart(title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    let width = 760.0;
    let left = 300.0;
    let bar_h = 26.0;
    let gap = 10.0;
    let top = 44.0;
    let height = top + bars.len() as f64 * (bar_h + gap) + 20.0;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="12" y="24" font-size="16" font-weight="bold" fill="#222">{}</text>"##,
        escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let w = (width - left - 140.0) * value / max;
        let color = if label.starts_with("this server") {
            "#2a7ae2"
        } else {
            "#9aa5b1"
        };
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#222">{}</text>"##,
            left - 8.0,
            y + bar_h * 0.68,
            escape(label)
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{left}" y="{y}" width="{w:.1}" height="{bar_h}" fill="{color}"/>"#
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{}" fill="#222">{} {}</text>"##,
            left + w + 6.0,
            y + bar_h * 0.68,
            num(Some(*value), if *value >= 100.0 { 0 } else { 1 }),
            escape(unit)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The charts: (file name, SVG).
pub fn charts(rows: &[Row]) -> Vec<(&'static str, String)> {
    let bars = |scenario: &str, path: &[&str], scale: f64| -> Vec<(String, f64)> {
        rows.iter()
            .filter(|r| r.scenario == scenario)
            .filter_map(|r| Some((format!("{} ({})", r.label, r.profile), r.f(path)? * scale)))
            .collect()
    };
    vec![
        (
            "fanout.svg",
            bar_chart(
                "Fan-out: deliveries per second (higher is better)",
                "/s",
                &bars("fanout", &["per_sec"], 1.0),
            ),
        ),
        (
            "latency.svg",
            bar_chart(
                "Latency p99 (lower is better)",
                "ms",
                &bars("latency", &["latency_us", "p99"], 0.001),
            ),
        ),
        (
            "memory.svg",
            bar_chart(
                "Idle memory per connection (lower is better)",
                "KiB",
                &bars("idle", &["kib_per_conn"], 1.0),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(
        scenario: &'static str,
        server: &'static str,
        profile: &'static str,
        data: Value,
    ) -> Row {
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
        let clean = json!({"per_sec": 600.0, "lost": 0, "duplicates": 0, "reordered": 0});
        let rows = vec![
            row("fanout", "ours", "seed", clean),
            row("fanout", "ours", "rich", json!({"per_sec": 200.0})),
            row("fanout", "original", "seed", json!({"per_sec": 100.0})),
            row("fanout", "broadcast", "seed", json!({"per_sec": 700.0})),
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
        assert!(line("fan-out ≥ 1.0× plain").contains("not met"), "{md}");
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
}
