//! Search with FTS5: an index of every message's current text (kept by
//! triggers as messages are written, edited, deleted and trimmed: see
//! `schema`), asked for the start of each word, newest first.

use super::{Error, SqliteStore, reads::blocking};
use crate::{
    log::Read,
    search::{MAX_RESULTS, Query, Scope, Search},
};
use rusqlite::types::Value;
use shared::chat::Msg;

/// Private and banned rooms one search names at most (beyond: the rest
/// are not searched).
const MAX_ROOMS: usize = 1_000;

/// The FTS5 query for `words`: each the start of a word, all of them.
fn fts_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `?, ?, …` for `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Search for SqliteStore {
    fn search(&self, query: Query, scope: Scope, limit: usize) -> Read<Vec<Msg>> {
        blocking(&self.shared, move |shared| {
            let conn = shared.read.lock().map_err(|_| Error::Poisoned)?;
            let private: Vec<&String> = scope.private.iter().take(MAX_ROOMS).collect();
            let banned: Vec<&String> = scope.banned.iter().take(MAX_ROOMS).collect();
            let mut sql = String::from(
                "SELECT m.room, r.epoch, m.seq, m.nick, m.text, m.ts, m.cid, m.changed, m.reply \
                 FROM messages m JOIN rooms r ON r.name = m.room ",
            );
            let mut args: Vec<Value> = Vec::new();
            if !query.words.is_empty() {
                sql.push_str("JOIN messages_fts f ON f.rowid = m.rowid AND messages_fts MATCH ? ");
                args.push(Value::Text(fts_query(&query.words)));
            }
            sql.push_str("WHERE m.kind IS NULL AND m.deleted = 0 ");
            // Public rooms, and the private ones the person is in.
            sql.push_str(&format!(
                "AND ((m.room NOT LIKE 'p-%' AND m.room NOT LIKE 'dm-%') OR m.room IN ({})) ",
                marks(private.len())
            ));
            args.extend(private.iter().map(|r| Value::Text((*r).clone())));
            if !banned.is_empty() {
                sql.push_str(&format!("AND m.room NOT IN ({}) ", marks(banned.len())));
                args.extend(banned.iter().map(|r| Value::Text((*r).clone())));
            }
            if let Some(room) = &query.room {
                sql.push_str("AND m.room = ? ");
                args.push(Value::Text(room.clone()));
            }
            if let Some(from) = &query.from {
                sql.push_str("AND m.nick = ? COLLATE NOCASE ");
                args.push(Value::Text(from.clone()));
            }
            if let Some(before) = query.before {
                sql.push_str("AND m.ts < ? ");
                args.push(Value::Integer(before));
            }
            if let Some(after) = query.after {
                sql.push_str("AND m.ts >= ? ");
                args.push(Value::Integer(after));
            }
            sql.push_str("ORDER BY m.ts DESC, m.seq DESC LIMIT ?");
            args.push(Value::Integer(limit.min(MAX_RESULTS) as i64));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                let mut msg = Msg::new(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                );
                msg.cid = r.get(6)?;
                msg.changed = r.get(7)?;
                msg.reply = r.get(8)?;
                Ok(msg)
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}
