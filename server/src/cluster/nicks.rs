//! Nicknames across processes: claimed with a Lua script, held for a
//! session that disconnected, released (or retried when Redis was away),
//! and claimed again after an outage.

use super::*;

impl Cluster {
    pub(super) fn holder(&self, conn: u64, session: Option<&str>) -> String {
        format!("{}:{conn}:{}", self.node, session.unwrap_or(""))
    }

    /// Claims exactly `nick` for a connection: `Ok(false)` when a live
    /// connection of another session holds it.
    pub async fn claim_exact(
        &self,
        nick: &str,
        conn: u64,
        session: Option<&str>,
    ) -> Result<bool, StoreError> {
        // Not gated on the health flag: it lags by up to one check, and a
        // call to a Redis that is down fails at once anyway.
        let mut invocation = self.claim.prepare_invoke();
        invocation
            .key(keys::NICKS)
            .key(keys::node_nicks(&self.node))
            .arg(crate::names::nick_key(nick))
            .arg(self.holder(conn, session))
            .arg(session.unwrap_or(""))
            .arg(self.holder(conn, None))
            .arg(now_ms());
        let mut con = self.conn.clone();
        let granted = self
            .bounded(CALL_TIMEOUT, invocation.invoke_async::<i64>(&mut con))
            .await?
            == 1;
        if granted {
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(conn, (nick.to_owned(), session.map(str::to_owned)));
        }
        Ok(granted)
    }

    /// After an outage: claims every held nickname again (a peer that
    /// thought this node dead may have freed them).
    pub(super) async fn reclaim_nicks(&self) {
        let held: Vec<(u64, (String, Option<String>))> = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(c, h)| (*c, h.clone()))
            .collect();
        for (conn, (nick, session)) in held {
            match self.claim_exact(&nick, conn, session.as_deref()).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!(%nick, conn_id = conn, "a nickname was taken by another process during an outage")
                }
                Err(e) => {
                    debug!(error = %e, "cannot reclaim nicknames yet");
                    return;
                }
            }
        }
    }

    /// Claims `wanted`, or `wanted-2`, `wanted-3`… Returns the nick granted.
    pub async fn claim_free(
        &self,
        wanted: &str,
        conn: u64,
        session: Option<&str>,
    ) -> Result<String, StoreError> {
        let mut candidate = wanted.to_owned();
        let mut n = 1u64;
        while !self.claim_exact(&candidate, conn, session).await? {
            n += 1;
            candidate = crate::names::suffixed(wanted, n);
        }
        Ok(candidate)
    }

    /// Gives a nickname back if this connection holds it.
    pub fn release(&self, nick: &str, conn: u64) {
        self.let_go(Release {
            nick: nick.to_owned(),
            conn,
            hold: None,
        });
    }

    /// A connection with a session ended: its nickname stays the
    /// session's for the session's lifetime (across every process).
    pub fn detach(&self, nick: &str, conn: u64, session: &str) {
        let ttl_ms = self.config.session_ttl_secs.saturating_mul(1_000);
        let until = now_ms().saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        self.let_go(Release {
            nick: nick.to_owned(),
            conn,
            hold: Some(format!("~{until}:{session}")),
        });
    }

    pub(super) fn let_go(&self, release: Release) {
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held.get(&release.conn).is_some_and(|(n, _)| {
                crate::names::nick_key(n) == crate::names::nick_key(&release.nick)
            }) {
                held.remove(&release.conn);
            }
        }
        let op = Op::Release(release);
        if !self.healthy() {
            self.defer_release(op);
        } else if let Err(
            mpsc::error::TrySendError::Full(op) | mpsc::error::TrySendError::Closed(op),
        ) = self.ops.try_send(op)
        {
            self.defer_release(op);
        }
    }

    pub(super) fn defer_releases(&self, releases: Vec<Release>) {
        if !releases.is_empty() {
            self.unreleased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(releases);
        }
    }

    pub(super) fn defer_release(&self, op: Op) {
        if let Op::Release(release) = op {
            self.unreleased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(release);
        }
    }

    /// Sends the releases Redis missed.
    pub(super) fn retry_releases(&self) {
        let pending =
            std::mem::take(&mut *self.unreleased.lock().unwrap_or_else(|p| p.into_inner()));
        for release in pending {
            self.let_go(release);
        }
    }
}
