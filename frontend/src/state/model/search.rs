//! Search results as the UI shows them: where each was said (the room's
//! name on screen), and which parts of its text the query's words match
//! (the start of a word, as the server matches), to highlight.

use super::{Model, label};
use shared::chat::Msg;

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Its room.
    pub room: String,
    /// The room as named on screen (`#name`, `🔒 title`, `@other`).
    pub place: String,
    /// Its `seq` in the room.
    pub seq: u64,
    /// Its author.
    pub from: String,
    /// Unix milliseconds.
    pub ts: i64,
    /// Its text, in parts: `true` for the parts the query's words match.
    pub parts: Vec<(String, bool)>,
}

/// The words of a search query, lower-cased, without its filters
/// (`from:`, `@`, `in:`, `#`, `before:`, `after:`) and the punctuation
/// around them: what results are highlighted by.
pub fn query_words(q: &str) -> Vec<String> {
    const FILTERS: [&str; 4] = ["from:", "in:", "before:", "after:"];
    q.split_whitespace()
        .filter(|t| {
            let t = t.to_lowercase();
            !(t.starts_with('#') || t.starts_with('@') || FILTERS.iter().any(|f| t.starts_with(f)))
        })
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// `text` in parts, the parts the `words` match marked `true`: a word
/// of the text whose start is one of `words` (in any case) has that start
/// marked, the longest match winning.
pub fn marks(text: &str, words: &[String]) -> Vec<(String, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts: Vec<(String, bool)> = Vec::new();
    let mut push = |part: &[char], hit: bool| match parts.last_mut() {
        Some((s, h)) if *h == hit => s.extend(part),
        _ => parts.push((part.iter().collect(), hit)),
    };
    let mut i = 0;
    while let Some(rest) = chars.get(i..).filter(|r| !r.is_empty()) {
        let starts = i == 0 || chars.get(i - 1).is_some_and(|c| !c.is_alphanumeric());
        let matched = starts
            .then(|| words.iter().filter_map(|w| matched(rest, w)).max())
            .flatten();
        let n = matched.unwrap_or(1);
        push(rest.get(..n).unwrap_or(rest), matched.is_some());
        i += n;
    }
    parts
}

/// How many characters of `text` the word `word` matches at its start.
fn matched(text: &[char], word: &str) -> Option<usize> {
    let mut n = 0;
    for w in word.chars() {
        let c = text.get(n)?;
        if !c.to_lowercase().eq(w.to_lowercase()) {
            return None;
        }
        n += 1;
    }
    (n > 0).then_some(n)
}

impl Model {
    /// The results of a search for `q` (in the server's order: newest
    /// first), highlighted by its words.
    pub fn hits(&self, q: &str, found: &[Msg]) -> Vec<Hit> {
        let words = query_words(q);
        found
            .iter()
            .filter(|m| m.kind.is_none() && !m.deleted)
            .map(|m| {
                let title = self.room(&m.room).and_then(|r| r.title.as_deref());
                Hit {
                    room: m.room.clone(),
                    place: label(&m.room, title, &self.nick),
                    seq: m.seq,
                    from: m.from.clone(),
                    ts: m.ts,
                    parts: marks(&m.text, &words),
                }
            })
            .collect()
    }
}
