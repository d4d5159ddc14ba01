//! Frames in: each is decoded, counted against the rate limit and handed
//! to its event's handler; Requests that take time run as tasks, answered
//! when they finish, and a Reset aborts one.

use super::{Conn, close, demo, envelope};
use crate::limits::{MAX_ROOMS_LISTED, Verdict};
use bytes::Bytes;
use shared::{
    Frame, Name,
    chat::{ErrorBody, ErrorCode},
    event,
};
use std::{future::Future, time::Instant};
use tracing::debug;

impl Conn {
    pub(super) fn notify(&self, name: Name, payload: impl Into<Bytes>) {
        self.outbox.push(Frame::notify(name, payload).encode());
    }

    pub(super) fn respond(&self, id: u32, payload: Bytes) {
        self.outbox.push(Frame::response(id, payload).encode());
    }

    /// Whether another request may wait for its answer (a `say` for its
    /// commit, a `long_runing_task`): at most `--max-inflight` at once.
    pub(super) fn may_wait(&self, id: u32) -> bool {
        if self.tasks.len() < self.app.config.max_inflight {
            return true;
        }
        self.app.metrics.rate_limited.inc();
        self.respond(
            id,
            envelope::<()>(Err(ErrorBody::new(
                ErrorCode::RateLimited,
                "too many requests waiting for an answer; wait for some first",
            ))),
        );
        false
    }

    /// Runs `work` as the answer to Request `id`; a Reset aborts it.
    pub(super) fn spawn_answer(
        &mut self,
        id: u32,
        work: impl Future<Output = Bytes> + Send + 'static,
    ) {
        let outbox = self.outbox.clone();
        let handle = self.tasks.spawn(async move {
            let payload = work.await;
            outbox.push(Frame::response(id, payload).encode());
            id
        });
        if let Some((_, older)) = self.inflight.insert(id, (handle.id(), handle)) {
            // The client reused an id still in flight: both calls still get
            // their answer; only the newer one can be reset.
            drop(older);
        }
    }

    pub(super) fn finished(&mut self, task: tokio::task::Id, id: u32) {
        if self.inflight.get(&id).is_some_and(|(t, _)| *t == task) {
            self.inflight.remove(&id);
        }
    }

    pub(super) fn reset(&mut self, id: u32) {
        if let Some((_, handle)) = self.inflight.remove(&id) {
            debug!(request_id = id, "reset: aborting");
            handle.abort();
        }
    }

    pub(super) async fn on_message(&mut self, bytes: Bytes) {
        let frame = match Frame::decode(&bytes) {
            Ok(frame) => frame,
            Err(e) => {
                debug!(error = %e, "undecodable frame");
                self.kill.close(close::PROTOCOL, "malformed frame");
                return;
            }
        };
        match frame {
            Frame::Notify { name, payload } => {
                if self.admit() {
                    self.on_notify(&name, payload).await;
                }
            }
            Frame::Request { id, name, payload } => {
                if self.admit() {
                    self.on_request(id, &name, payload).await;
                } else if !self.kill.is_fired() {
                    self.respond(
                        id,
                        envelope::<()>(Err(ErrorBody::new(
                            ErrorCode::RateLimited,
                            "too many messages; slow down",
                        ))),
                    );
                }
            }
            Frame::Reset { id } => {
                if self.admit() {
                    self.reset(id);
                }
            }
            Frame::Response { .. } => {
                self.kill
                    .close(close::PROTOCOL, "clients do not send responses");
            }
        }
    }

    /// Applies the rate limit; closes the connection on sustained abuse.
    pub(super) fn admit(&mut self) -> bool {
        match self.limiter.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::Refuse => {
                self.app.metrics.rate_limited.inc();
                false
            }
            Verdict::Abuse => {
                self.app.metrics.rate_limited.inc();
                self.kill.close(close::POLICY, "too many messages");
                false
            }
        }
    }

    pub(super) async fn on_notify(&mut self, name: &str, payload: Bytes) {
        match name {
            event::PING => self.notify(event::name::PONG, payload),
            event::BROADCAST => self.broadcast(payload).await,
            event::TYPING => self.typing(payload).await,
            other => debug!(event = other, "ignoring unknown notify"),
        }
    }

    pub(super) async fn on_request(&mut self, id: u32, name: &str, payload: Bytes) {
        let answer = match name {
            event::MYIP => Bytes::from(self.addr.to_string()),
            event::UPPERCASE => demo::uppercase(&payload),
            event::LONG_RUNNING_TASK => {
                if self.may_wait(id) {
                    let work = demo::long_running_task(self.app.clone());
                    self.spawn_answer(id, work);
                }
                return;
            }
            event::SAY => {
                if !self.may_wait(id) {
                    return;
                }
                match self.say(payload).await {
                    Ok(ack) => self.spawn_answer(id, ack),
                    Err(e) => self.respond(id, envelope::<()>(Err(e))),
                }
                return;
            }
            event::EDIT | event::DELETE => {
                if !self.may_wait(id) {
                    return;
                }
                // Each answers once its entry is stored, as `say` does.
                let queued = match name {
                    event::EDIT => self.edit(payload).await.map(futures_util::FutureExt::boxed),
                    _ => self
                        .delete(payload)
                        .await
                        .map(futures_util::FutureExt::boxed),
                };
                match queued {
                    Ok(ack) => self.spawn_answer(id, ack),
                    Err(e) => self.respond(id, envelope::<()>(Err(e))),
                }
                return;
            }
            event::HELLO => envelope(self.hello(payload).await),
            event::JOIN => envelope(self.join(payload).await),
            event::LEAVE => envelope(self.leave(payload).await),
            event::HISTORY => envelope(self.history(payload).await),
            event::SEARCH => envelope(self.search(payload).await),
            event::ROOMS => envelope(Ok(self.list_rooms(MAX_ROOMS_LISTED).await)),
            event::CREATE => envelope(self.create(payload).await),
            event::DM => envelope(self.dm(payload).await),
            event::INVITE => envelope(self.invite(payload).await),
            event::KICK => envelope(self.moderate(event::KICK, payload).await),
            event::BAN => envelope(self.moderate(event::BAN, payload).await),
            event::UNBAN => envelope(self.moderate(event::UNBAN, payload).await),
            event::MODERATOR => envelope(self.promote(payload).await),
            event::ACTIONS => envelope(self.actions(payload).await),
            event::NICK => envelope(self.rename(payload).await),
            other => envelope::<()>(Err(ErrorBody::new(
                ErrorCode::UnknownEvent,
                format!("no such request: '{other}'"),
            ))),
        };
        self.respond(id, answer);
    }
}
