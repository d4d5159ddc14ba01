//! Retention, run by the writer between groups: rooms written lately are
//! cut to the newest `max_messages` every [`TRIM_EVERY`]; every
//! [`FULL_SWEEP_EVERY`] the whole table is swept (message age, every room,
//! sessions unseen for the session TTL). A room's newest message is never
//! deleted, so its `seq` always continues.

use super::{FULL_SWEEP_EVERY, TRIM_EVERY, Writer};
use crate::sqlite::{ms, now_ms};
use rusqlite::params;
use std::{sync::Arc, time::Instant};
use tracing::warn;

impl Writer {
    /// Runs the retention that is due: a full sweep first thing and then
    /// every [`FULL_SWEEP_EVERY`], and in between a trim of the rooms
    /// written lately every [`TRIM_EVERY`].
    pub(super) fn maintain(&mut self) {
        if let Err(e) = self.witness.sync() {
            warn!(error = %e, "cannot sync the record of acknowledged commits");
        }
        if self
            .last_full_sweep
            .is_none_or(|at| at.elapsed() >= FULL_SWEEP_EVERY)
        {
            self.apply_retention();
        } else if self.last_trim.elapsed() >= TRIM_EVERY && !self.touched.is_empty() {
            self.trim_touched();
        }
    }

    /// Cuts each room written since the last trim to the newest
    /// `max_messages`, in one transaction.
    fn trim_touched(&mut self) {
        self.last_trim = Instant::now();
        let keep = self.retention.max_messages.max(1);
        let rooms: Vec<(Arc<str>, u64)> = self
            .touched
            .drain()
            .filter_map(|room| {
                let last = *self.stored.get(&room)?;
                (last > keep).then(|| (room, last - keep))
            })
            .collect();
        if rooms.is_empty() {
            return;
        }
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for (room, upto) in &rooms {
                tx.prepare_cached("DELETE FROM messages WHERE room = ?1 AND seq <= ?2")?
                    .execute(params![&**room, upto])?;
            }
            tx.commit()
        })();
        if let Err(e) = result {
            let _ = self.conn.execute_batch("ROLLBACK");
            warn!(error = %e, "retention trim failed");
        }
    }

    /// Deletes what retention no longer keeps (never a room's newest message,
    /// so `seq` always continues), and sessions unseen for the session TTL.
    pub(super) fn apply_retention(&mut self) {
        self.last_full_sweep = Some(Instant::now());
        self.last_trim = Instant::now();
        self.touched.clear();
        let keep = self.retention.max_messages.max(1);
        let by_count = self.conn.execute(
            "DELETE FROM messages WHERE seq <= (SELECT max(m.seq) FROM messages m WHERE m.room = messages.room) - ?1",
            [keep],
        );
        let by_age = match self.retention.max_age {
            Some(age) => {
                let cutoff = now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                self.conn.execute(
                    "DELETE FROM messages WHERE ts < ?1 AND seq < (SELECT max(m.seq) FROM messages m WHERE m.room = messages.room)",
                    [cutoff],
                )
            }
            None => Ok(0),
        };
        let sessions = self.conn.execute(
            "DELETE FROM sessions WHERE seen < ?1",
            [now_ms() - ms(self.session_ttl)],
        );
        if let Err(e) = by_count.and(by_age).and(sessions) {
            warn!(error = %e, "retention sweep failed");
        }
    }
}
