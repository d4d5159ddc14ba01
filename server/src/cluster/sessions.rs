//! Sessions in Redis: saved under their token's hash, saves kept (the
//! latest per session) while Redis is away, and a session resumed on
//! another process closing its old connection.

use super::*;

/// Session saves waiting for Redis: the latest per session.
#[derive(Debug, Default)]
pub(super) struct PendingSaves(HashMap<String, UnsavedSession>);

impl PendingSaves {
    /// Keeps `save` unless a later save of its session is kept; `false`
    /// when it had to be dropped (too many sessions waiting).
    pub(super) fn keep(&mut self, save: UnsavedSession) -> bool {
        match self.0.get(&save.token) {
            Some(kept) if kept.order > save.order => true,
            Some(_) => {
                self.0.insert(save.token.clone(), save);
                true
            }
            None if self.0.len() < MAX_UNSAVED => {
                self.0.insert(save.token.clone(), save);
                true
            }
            None => false,
        }
    }

    /// `save` reached Redis (or is on its way): forget anything older.
    pub(super) fn settle(&mut self, save: &UnsavedSession) {
        if self
            .0
            .get(&save.token)
            .is_some_and(|kept| kept.order <= save.order)
        {
            self.0.remove(&save.token);
        }
    }

    /// Everything kept, oldest first.
    pub(super) fn take(&mut self) -> Vec<UnsavedSession> {
        let mut saves: Vec<UnsavedSession> = std::mem::take(&mut self.0).into_values().collect();
        saves.sort_by_key(|s| s.order);
        saves
    }
}

/// A session save that has not reached Redis yet.
#[derive(Debug, Clone)]
pub(super) struct UnsavedSession {
    pub(super) token: String,
    pub(super) json: String,
    /// Order of the saves: a later one supersedes an earlier one.
    pub(super) order: u64,
}

impl Cluster {
    /// A message on this node's control channel.
    pub(super) fn control(&self, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload);
        let mut parts = text.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("kill"), Some(conn), Some(token)) => {
                if let Ok(conn) = conn.parse() {
                    let _ = self.takeovers.send((token.to_owned(), conn));
                }
            }
            // A peer reaped this node while it was alive (its heartbeat
            // came back too late): its members are to be put back.
            (Some("resync"), None, None) => self.resync_rooms(),
            _ => debug!(%text, "unknown control message"),
        }
    }

    /// Sessions resumed on another process, to be closed here (taken once,
    /// by the state that owns the directory).
    pub fn takeovers(&self) -> Option<mpsc::UnboundedReceiver<(String, u64)>> {
        self.takeovers_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Records that `token` is live on this connection; if it was live on
    /// another process, tells that process to close its connection (as one
    /// process does when a session is resumed on a second connection).
    pub async fn went_live(&self, token: &str, conn: u64) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(keys::live(token))
            .arg(self.member_key(conn))
            .arg("EX")
            .arg(self.config.session_ttl_secs.max(1))
            .arg("GET");
        let Ok(Some(before)) = self.call::<Option<String>>(&cmd).await else {
            return;
        };
        let Some((node, old_conn)) = before.split_once(':') else {
            return;
        };
        if node != self.node {
            self.fire(vec![(
                keys::control(node),
                redis::cmd("PUBLISH")
                    .arg(keys::control(node))
                    .arg(format!("kill {old_conn} {token}"))
                    .clone(),
            )]);
        }
    }

    /// A session saved by any process.
    pub async fn load_session(&self, token: &str) -> Option<SavedSession> {
        let raw: Option<String> = self
            .call(redis::cmd("GET").arg(keys::session(token)))
            .await
            .ok()?;
        let saved: StoredSession = serde_json::from_str(&raw?).ok()?;
        Some(SavedSession {
            nick: saved.nick,
            rooms: saved.rooms,
        })
    }

    /// Saves a session for whichever process the client comes back to.
    pub fn save_session(&self, token: &str, session: &SavedSession) {
        let json = serde_json::to_string(&StoredSession {
            nick: session.nick.clone(),
            rooms: session.rooms.clone(),
        })
        .unwrap_or_default();
        let save = UnsavedSession {
            token: token.to_owned(),
            json,
            order: self.saves.fetch_add(1, Ordering::Relaxed),
        };
        if !self.healthy() {
            self.defer_saves(vec![save]);
            return;
        }
        // Whatever was kept for this session is older: never make it again.
        self.settle_saves(std::slice::from_ref(&save));
        self.queue_save(save);
    }

    /// Hands a save to the writer, or keeps it for later.
    pub(super) fn queue_save(&self, save: UnsavedSession) {
        if let Err(e) = self.ops.try_send(Op::Save(save))
            && let Op::Save(save) = e.into_inner()
        {
            self.defer_saves(vec![save]);
        }
    }

    /// Keeps saves that did not reach Redis, unless a later save of the
    /// same session is already kept.
    pub(super) fn defer_saves(&self, saves: Vec<UnsavedSession>) {
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
        for save in saves {
            if !unsaved.keep(save) {
                warn!("too many session saves waiting for redis; dropping one");
            }
        }
    }

    /// Saves that reached Redis: nothing older of theirs is to be made again.
    pub(super) fn settle_saves(&self, saves: &[UnsavedSession]) {
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
        for save in saves {
            unsaved.settle(save);
        }
    }

    pub(super) fn session_set(&self, token: &str, json: &str) -> Cmd {
        redis::cmd("SET")
            .arg(keys::session(token))
            .arg(json)
            .arg("EX")
            .arg(self.config.session_ttl_secs.max(1))
            .clone()
    }

    /// Makes again the session saves that could not reach Redis.
    pub(super) fn retry_saves(&self) {
        let saves = self
            .unsaved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for save in saves {
            self.queue_save(save);
        }
    }
}
