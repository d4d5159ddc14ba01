//! The results: Markdown tables, SVG bar charts, the lines printed as the
//! runs go, and what makes a quick run fail.
//!
//! One job per file: `markdown` (`results.md`), `charts` (SVG), `console`
//! (the printed lines), `checks` (a quick run's problems), `signin` and
//! `search` (those scenarios' tables; search's problems too); this file
//! holds a run's row and the number formatting they share.

mod charts;
mod checks;
mod console;
mod markdown;
mod search;
mod signin;
#[cfg(test)]
mod tests;

pub use charts::{bar_chart, charts};
pub use checks::{cluster_problems, quick_problems};
pub use console::{cluster_line, human, metrics_line};
pub use markdown::{cluster_markdown, header, markdown};
pub use search::{search_markdown, search_problems};
pub use signin::signin_markdown;

use serde_json::Value;

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
