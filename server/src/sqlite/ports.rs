//! The store behind the ports: [`Log`] (append, reads, retention) and
//! [`HistoryStore`] (saved sessions, flushing at shutdown).

use super::{Op, SqliteStore, ms, now_ms, queued_bytes, reads::blocking};
use crate::{
    history::{HistoryStore, SavedSession},
    log::{Entry, Log, Placed, Read, Snapshot, StoreError},
};
use rusqlite::{OptionalExtension, params};
use shared::chat::Msg;
use std::{
    sync::{atomic::Ordering, mpsc},
    time::Duration,
};
use tokio::sync::oneshot;
use tracing::warn;

impl HistoryStore for SqliteStore {
    fn accounts(&self) -> Option<std::sync::Arc<dyn crate::accounts::Accounts>> {
        Some(std::sync::Arc::new(super::SqliteAccounts::on(
            self.shared.accounts.clone(),
        )))
    }

    fn access(&self) -> Option<std::sync::Arc<dyn crate::access::Access>> {
        Some(std::sync::Arc::new(super::SqliteAccounts::on(
            self.shared.accounts.clone(),
        )))
    }

    fn search(&self) -> Option<std::sync::Arc<dyn crate::search::Search>> {
        Some(std::sync::Arc::new(self.clone()))
    }

    fn flushed(&self) -> Option<oneshot::Receiver<()>> {
        let (done, flushed) = oneshot::channel();
        self.shared.send(Op::Flush(done)).then_some(flushed)
    }

    fn load_session(&self, token: &str) -> Option<SavedSession> {
        let since = now_ms() - ms(self.shared.session_ttl);
        self.shared
            .read(|c| {
                c.query_row(
                    "SELECT nick, rooms FROM sessions WHERE token = ?1 AND seen >= ?2",
                    params![token, since],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
            })
            .ok()
            .flatten()
            .map(|(nick, rooms)| SavedSession {
                nick,
                rooms: rooms
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(Into::into)
                    .collect(),
            })
            .inspect(|_| {
                if let Ok(mut restored) = self.shared.restored.lock() {
                    restored.insert(token.to_owned());
                }
            })
    }

    fn save_session(&self, token: &str, session: &SavedSession) {
        self.shared.send(Op::Session {
            token: token.to_owned(),
            session: session.clone(),
        });
    }

    fn held_nicks(&self) -> Vec<(String, String, Duration)> {
        let now = now_ms();
        let ttl = ms(self.shared.session_ttl);
        self.shared
            .read(|c| {
                let mut stmt =
                    c.prepare("SELECT token, nick, seen FROM sessions WHERE seen >= ?1")?;
                let rows = stmt.query_map([now - ttl], |r| {
                    let seen: i64 = r.get(2)?;
                    let left = (seen + ttl - now).max(0);
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        Duration::from_millis(u64::try_from(left).unwrap_or(0)),
                    ))
                })?;
                rows.collect()
            })
            .unwrap_or_else(|e| {
                warn!(error = %e, "cannot read the stored sessions' nicknames");
                Vec::new()
            })
    }
}

impl Log for SqliteStore {
    fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    fn exists(&self, room: &str) -> Read<bool> {
        let found = self
            .shared
            .read(|c| {
                c.query_row("SELECT 1 FROM rooms WHERE name = ?1", [room], |_| Ok(()))
                    .optional()
            })
            .map(|row| row.is_some());
        Box::pin(async move { found })
    }

    fn append(&self, room: &str, entry: Entry) -> oneshot::Receiver<Result<Placed, StoreError>> {
        let (done, placed) = oneshot::channel();
        self.shared
            .queued
            .fetch_add(queued_bytes(&entry), Ordering::AcqRel);
        let op = Op::Append {
            room: room.into(),
            entry,
            done,
        };
        let sent = match self.shared.writer.lock() {
            Ok(writer) => writer.send(op).map_err(|mpsc::SendError(op)| op),
            Err(_) => Err(op),
        };
        if let Err(Op::Append { entry, done, .. }) = sent {
            self.shared
                .queued
                .fetch_sub(queued_bytes(&entry), Ordering::AcqRel);
            let _ = done.send(Err(StoreError::Stopped));
        }
        placed
    }

    fn has_room(&self, bytes: usize) -> bool {
        self.shared.queued.load(Ordering::Acquire) + bytes + 64 <= self.shared.queue_limit
    }

    fn snapshot_now(&self, room: &str, recent: usize) -> Option<Result<Snapshot, StoreError>> {
        Some(self.shared.snapshot(room, recent))
    }

    fn snapshot(&self, room: &str, recent: usize) -> Read<Snapshot> {
        let room = room.to_owned();
        blocking(&self.shared, move |s| s.snapshot(&room, recent))
    }

    fn range(&self, room: &str, from: u64, to: u64) -> Read<Vec<Msg>> {
        let room = room.to_owned();
        blocking(&self.shared, move |s| s.range(&room, from, to))
    }

    fn before(&self, room: &str, before: u64, limit: usize) -> Read<Vec<Msg>> {
        let room = room.to_owned();
        blocking(&self.shared, move |s| s.before(&room, before, limit))
    }

    fn expiry_cutoff(&self) -> Option<i64> {
        self.shared.max_age.map(|age| now_ms() - ms(age))
    }

    fn kept_per_room(&self) -> Option<u64> {
        Some(self.shared.max_messages)
    }

    fn retire(&self, room: &str) {
        self.shared.send(Op::Retire(room.into()));
    }
}
