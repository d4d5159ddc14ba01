//! `search`: messages matching a query in every room this connection may
//! read (public rooms, and the private rooms its account is in, not those
//! it is banned from), asked of the store where history is.

use super::{Conn, chat::parse};
use crate::search::{self, Scope};
use bytes::Bytes;
use shared::{
    chat::{ErrorBody, ErrorCode, Msg, SearchQuery},
    event,
};

impl Conn {
    pub(super) async fn search(&mut self, payload: Bytes) -> Result<Vec<Msg>, ErrorBody> {
        self.require_hello()?;
        let req: SearchQuery = parse(&payload, event::SEARCH)?;
        let query = search::parse(&req.q)
            .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, e.to_string()))?;
        let Some(store) = self.app.search.clone() else {
            return Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "this server does not search",
            ));
        };
        // Bounded in number and in time: a flood of searches costs the
        // store no more than `--search-running` at once, each at most
        // `--search-timeout-secs`.
        let Ok(_slot) = self.app.searches.try_acquire() else {
            return Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "search is busy; try again in a moment",
            ));
        };
        let scope = self.search_scope().await?;
        let limit = usize::from(req.limit.unwrap_or(search::MAX_RESULTS as u16));
        let answer = tokio::time::timeout(
            self.app.config.search_timeout(),
            store.search(query, scope, limit),
        )
        .await
        .map_err(|_| {
            ErrorBody::new(
                ErrorCode::Unavailable,
                "that search took too long; narrow it with in: or from:",
            )
        })?;
        let mut found = answer.map_err(|e| {
            tracing::warn!(error = %e, "search failed");
            ErrorBody::new(ErrorCode::Unavailable, "search is not available right now")
        })?;
        // The newest that fit in one reply.
        let mut used = 0;
        found.retain(|m| {
            used += crate::limits::msg_bytes(m);
            used <= self.app.config.max_reply_bytes
        });
        Ok(found)
    }

    /// The rooms this connection may read.
    async fn search_scope(&self) -> Result<Scope, ErrorBody> {
        let (Some(me), Some(access)) = (self.account.as_deref(), &self.app.access) else {
            return Ok(Scope::default());
        };
        let failed = |e: crate::log::StoreError| {
            tracing::warn!(error = %e, "cannot read what a search may see");
            ErrorBody::new(ErrorCode::Unavailable, "search is not available right now")
        };
        let private = access.private_rooms_of(&me.key).await.map_err(failed)?;
        let banned = access.banned_from(&me.key).await.map_err(failed)?;
        Ok(Scope {
            private: private.into_iter().map(|(room, _)| room).collect(),
            banned,
        })
    }
}
