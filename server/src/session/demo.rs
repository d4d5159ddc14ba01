//! The original broadcasting demo's events: `broadcast`,
//! `ping`, `myip`, `uppercase`, `long_runing_task`.

use super::{Conn, envelope};
use crate::{AppState, room::Post};
use bytes::Bytes;
use shared::{
    chat::{ErrorBody, ErrorCode},
    event,
};
use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};
use tracing::debug;

/// How long `long_runing_task` works.
pub(super) const LONG_TASK: Duration = Duration::from_secs(3);

/// `uppercase`: the payload upper-cased, Unicode-aware.
pub(super) fn uppercase(payload: &[u8]) -> Bytes {
    match std::str::from_utf8(payload) {
        Ok(text) => Bytes::from(text.to_uppercase()),
        Err(_) => envelope::<()>(Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "uppercase needs UTF-8 text",
        ))),
    }
}

/// Counts a running `long_runing_task` while it lives, so its abort shows.
struct Running(Arc<AppState>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stats.long_tasks.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `long_runing_task`: `done!` after three seconds.
pub(super) fn long_running_task(app: Arc<AppState>) -> impl Future<Output = Bytes> + Send {
    app.stats.long_tasks.fetch_add(1, Ordering::Relaxed);
    let running = Running(app);
    async move {
        let _running = running;
        tokio::time::sleep(LONG_TASK).await;
        Bytes::from_static(b"done!")
    }
}

impl Conn {
    /// `broadcast`: posts the text to `lobby` as this connection; bytes
    /// that are not UTF-8 are relayed to the lobby's demo clients as they
    /// are, as the original server does (chat clients do not get them).
    pub(super) async fn broadcast(&mut self, payload: Bytes) {
        let Some(lobby) = self.rooms.get(event::LOBBY) else {
            debug!("dropping a broadcast: not in the lobby");
            return;
        };
        let Ok(text) = std::str::from_utf8(&payload) else {
            lobby.relay(payload).await;
            return;
        };
        let text = match crate::names::text(text, self.app.config.max_text_chars) {
            Ok(text) => text,
            Err(e) => {
                debug!(error = %e, "dropping a broadcast");
                return;
            }
        };
        lobby
            .post_unacked(Post {
                conn: self.id,
                from: self.nick.clone(),
                text,
                cid: None,
                session: None,
                author: None,
                change: None,
                reply: None,
                received: std::time::Instant::now(),
            })
            .await;
    }
}
