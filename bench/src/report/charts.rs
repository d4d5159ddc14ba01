//! The charts: horizontal SVG bars, one per run.

use super::{Row, num};
use std::fmt::Write as _;

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
