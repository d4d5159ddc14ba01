//! Full-text search, as a port: what a person asks ([`Query`], parsed from
//! the text they type), which rooms they may read ([`Scope`]), and the
//! stores that answer ([`Search`]): SQLite with FTS5, the memory store
//! and cluster mode by reading what they keep (see `docs/PROTOCOL.md`).
//!
//! Words match the start of words (prefix matching: `deplo` finds
//! "deployment"), case- and accent-insensitively in SQLite; every word must
//! match. Filters: `from:NAME`, `in:ROOM` (`#ROOM` too), `before:DATE`,
//! `after:DATE` (`YYYY-MM-DD`, UTC; `before` excludes the day, `after`
//! excludes the day).

use crate::log::Read;
use shared::chat::Msg;

/// Words in one query at most (more are refused).
pub const MAX_WORDS: usize = 8;
/// Results one search answers at most.
pub const MAX_RESULTS: usize = 50;
/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Entries one search reads at most where it reads rather than asks an
/// index (cluster mode): past it, what was found so far is the answer.
pub const MAX_READ: u64 = 200_000;

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Words every result holds (as the start of one of its words),
    /// lower-cased.
    pub words: Vec<String>,
    /// Only messages by this nickname (case-insensitive).
    pub from: Option<String>,
    /// Only this room.
    pub room: Option<String>,
    /// Only messages before this time (ms since the Unix epoch).
    pub before: Option<i64>,
    /// Only messages at or after this time.
    pub after: Option<i64>,
}

/// The rooms a person may read: every public room, the private rooms
/// they were let into, not those they are banned from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Private rooms and direct messages they are in.
    pub private: Vec<String>,
    /// Rooms they are banned from.
    pub banned: Vec<String>,
}

impl Scope {
    /// Whether `room` may be read.
    pub fn allows(&self, room: &str) -> bool {
        if self.banned.iter().any(|r| r == room) {
            return false;
        }
        !crate::access::is_private_name(room) || self.private.iter().any(|r| r == room)
    }
}

/// Stores that search what they keep.
pub trait Search: Send + Sync {
    /// Messages (in their final state; never a deleted one or a change
    /// entry) that match `query` in rooms `scope` allows, newest first,
    /// at most `limit`.
    fn search(&self, query: Query, scope: Scope, limit: usize) -> Read<Vec<Msg>>;
}

/// Why a query cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadQuery {
    #[error("a search needs a word or a filter (from:, in:, before:, after:)")]
    Empty,
    #[error("searches are at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("at most {MAX_WORDS} words per search")]
    TooManyWords,
    #[error("'{0}' is not a date: write YYYY-MM-DD")]
    Date(String),
}

/// The words of `text` as search compares them: runs of letters and
/// digits, lower-cased.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Parses what a person typed.
pub fn parse(raw: &str) -> Result<Query, BadQuery> {
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(BadQuery::TooLong);
    }
    let mut query = Query::default();
    for part in raw.split_whitespace() {
        let (key, value) = part.split_once(':').unwrap_or(("", part));
        match key.to_ascii_lowercase().as_str() {
            "from" if !value.is_empty() => {
                query.from = Some(value.trim_start_matches('@').to_owned());
            }
            "in" if !value.is_empty() => {
                query.room = Some(value.trim_start_matches('#').to_owned());
            }
            "before" => query.before = Some(day_start(value)?),
            "after" => query.after = Some(day_start(value)? + 86_400_000),
            _ if part.starts_with('#') && part.len() > 1 => {
                query.room = Some(part[1..].to_owned());
            }
            _ => query.words.extend(words(part)),
        }
    }
    if query.words.len() > MAX_WORDS {
        return Err(BadQuery::TooManyWords);
    }
    let filtered = query.from.is_some()
        || query.room.is_some()
        || query.before.is_some()
        || query.after.is_some();
    if query.words.is_empty() && !filtered {
        return Err(BadQuery::Empty);
    }
    Ok(query)
}

/// Midnight (UTC) starting the day `YYYY-MM-DD`, in ms since the epoch.
fn day_start(date: &str) -> Result<i64, BadQuery> {
    let bad = || BadQuery::Date(date.to_owned());
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days since 1970-01-01 of a proleptic Gregorian date.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400_000)
}

/// Whether `msg` of `room` matches `query` (the memory store's and
/// cluster mode's matcher; SQLite asks FTS5 the same).
pub fn matches(query: &Query, room: &str, msg: &Msg) -> bool {
    if msg.kind.is_some() || msg.deleted {
        return false;
    }
    if query.room.as_deref().is_some_and(|r| r != room)
        || query
            .from
            .as_deref()
            .is_some_and(|f| !f.eq_ignore_ascii_case(&msg.from))
        || query.before.is_some_and(|t| msg.ts >= t)
        || query.after.is_some_and(|t| msg.ts < t)
    {
        return false;
    }
    if query.words.is_empty() {
        return true;
    }
    let have: Vec<String> = words(&msg.text).collect();
    query
        .words
        .iter()
        .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_into_words_and_filters() {
        let q =
            parse("Deplo from:@ann in:#ops after:2026-12-01 before:2026-12-07 v2.1").expect("ok");
        assert_eq!(q.words, ["deplo", "v2", "1"]);
        assert_eq!(q.from.as_deref(), Some("ann"));
        assert_eq!(q.room.as_deref(), Some("ops"));
        assert_eq!(q.after, Some(day_start("2026-12-02").expect("day")));
        assert_eq!(q.before, Some(1_796_601_600_000));
        assert_eq!(parse("#ops").expect("ok").room.as_deref(), Some("ops"));
        assert_eq!(parse("   "), Err(BadQuery::Empty));
        assert_eq!(
            parse("before:yesterday"),
            Err(BadQuery::Date("yesterday".into()))
        );
        assert_eq!(parse("a b c d e f g h i"), Err(BadQuery::TooManyWords));
        assert_eq!(day_start("1970-01-01"), Ok(0));
        assert_eq!(day_start("2000-03-01"), Ok(951_868_800_000));
    }

    #[test]
    fn every_word_matches_the_start_of_a_word() {
        let msg = Msg::new(
            "r".into(),
            "e".into(),
            1,
            "Ann".into(),
            "Deployment of v2 done".into(),
            10,
        );
        let q = |s: &str| parse(s).expect("query");
        assert!(matches(&q("deplo"), "r", &msg));
        assert!(matches(&q("DONE deploy"), "r", &msg));
        assert!(!matches(&q("ploy"), "r", &msg), "the start of a word only");
        assert!(!matches(&q("deploy missing"), "r", &msg), "every word");
        assert!(matches(&q("from:ann"), "r", &msg));
        assert!(!matches(&q("from:bob deploy"), "r", &msg));
        assert!(!matches(&q("in:other deploy"), "r", &msg));
        let gone = Msg {
            deleted: true,
            ..msg
        };
        assert!(!matches(&q("deploy"), "r", &gone));
    }

    #[test]
    fn private_rooms_are_in_scope_only_for_their_members() {
        let scope = Scope {
            private: vec!["p-1".into()],
            banned: vec!["hall".into()],
        };
        assert!(scope.allows("lobby"));
        assert!(scope.allows("p-1"));
        assert!(!scope.allows("p-2"));
        assert!(!scope.allows("dm-3"));
        assert!(!scope.allows("hall"));
    }
}
