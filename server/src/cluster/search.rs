//! Search in cluster mode: every retained message of the rooms the person
//! may read, read from the rooms' streams (newest first, in windows, with
//! edits and deletes applied) and matched here. No index to keep in step
//! across processes: the streams are the truth, and retention bounds how
//! much a search reads (`--retention-messages` per room; `in:` reads one
//! room; a search reads at most `search::MAX_READ` entries). `bench --only
//! search` measures it against SQLite's index.

use super::*;
use crate::search::{MAX_READ, MAX_RESULTS, Query, Scope, Search, matches};

/// Entries read per window.
const WINDOW: u64 = 1_000;
/// Rooms one search reads at most.
const MAX_ROOMS: usize = 1_000;

impl Search for Cluster {
    fn search(&self, query: Query, scope: Scope, limit: usize) -> Read<Vec<Msg>> {
        let me = self.owned();
        Box::pin(async move { me?.search_rooms(query, scope, limit).await })
    }
}

impl Cluster {
    async fn search_rooms(
        &self,
        query: Query,
        scope: Scope,
        limit: usize,
    ) -> Result<Vec<Msg>, StoreError> {
        let limit = limit.min(MAX_RESULTS);
        let rooms: Vec<String> = match &query.room {
            Some(room) => vec![room.clone()],
            None => self.call(redis::cmd("SMEMBERS").arg(keys::LOGS)).await?,
        };
        let mut found = Vec::new();
        let mut budget = MAX_READ;
        for room in rooms
            .into_iter()
            .filter(|r| scope.allows(r))
            .take(MAX_ROOMS)
        {
            if budget == 0 {
                break;
            }
            found.extend(self.search_room(&query, &room, limit, &mut budget).await?);
        }
        found.sort_by(|a, b| b.ts.cmp(&a.ts).then(b.seq.cmp(&a.seq)));
        found.truncate(limit);
        Ok(found)
    }

    /// The newest `limit` matches in one room, reading at most `budget`
    /// entries (less what it read).
    async fn search_room(
        &self,
        query: &Query,
        room: &str,
        limit: usize,
        budget: &mut u64,
    ) -> Result<Vec<Msg>, StoreError> {
        let head: Option<u64> = self.call(redis::cmd("GET").arg(keys::seq(room))).await?;
        let first = self
            .call::<Value>(
                redis::cmd("XRANGE")
                    .arg(keys::log(room))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        let (Some(head), Some(first)) = (head, entries(room, first)?.first().map(|m| m.seq)) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        let mut high = head;
        while high >= first && found.len() < limit && *budget > 0 {
            let low = high.saturating_sub(WINDOW.min(*budget) - 1).max(first);
            *budget = budget.saturating_sub(high - low + 1);
            let msgs = self.read_window(room, low, high).await?;
            found.extend(
                msgs.into_iter()
                    .rev()
                    .filter(|m| matches(query, room, m))
                    .take(limit - found.len()),
            );
            if low <= first {
                break;
            }
            high = low - 1;
        }
        Ok(found)
    }
}
