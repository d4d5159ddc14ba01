//! The pipeline: a post goes to the log, which places it; entries are
//! delivered in `seq` order once stored, from this room's appends and from
//! the bus alike; a gap is read back from the log.

use super::{Appending, Reply, Room, Task, json, now_ms};
use crate::{
    log::{Entry, Placed, Refusal, StoreError},
    ring::Ring,
    room::Post,
};
use bytes::Bytes;
use shared::{
    Frame,
    chat::{ErrorBody, ErrorCode, Msg, Said},
    event::name,
};
use std::time::Instant;
use tokio::sync::oneshot;
use tracing::{debug, warn};

/// Entries read back from the log at a time.
const FETCH_AT_MOST: u64 = 1_000;

fn unavailable(what: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unavailable, what)
}

impl Room {
    /// Hands a post to the log; it is delivered and acknowledged once
    /// stored, in `seq` order.
    pub(super) fn post(&mut self, post: Post, reply: Option<Reply>) {
        let answer = |reply: Option<Reply>, result: Result<Said, ErrorBody>| {
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
        };
        if !self.members.contains_key(&post.conn) {
            let err = ErrorBody::new(
                ErrorCode::NotJoined,
                format!("join '{}' before posting to it", self.name),
            );
            return answer(reply, Err(err));
        }
        if let Some(rate) = &mut self.rate
            && !rate.take(Instant::now())
        {
            let err = ErrorBody::new(
                ErrorCode::RateLimited,
                format!("'{}' is in slow mode; try again in a moment", self.name),
            );
            return answer(reply, Err(err));
        }
        if !self.ready || self.degraded || !self.bus.healthy() {
            return answer(
                reply,
                Err(unavailable(
                    "the room is degraded (its store is unreachable); try again",
                )),
            );
        }
        if let (Some(session), Some(cid)) = (&post.session, &post.cid)
            && let Some(entry) = self
                .appending
                .iter_mut()
                .find(|e| e.session.as_ref() == Some(session) && e.cid.as_ref() == Some(cid))
        {
            // A retry of a message still being stored waits for the same answer.
            entry.replies.extend(reply);
            return;
        }
        if !self.log.has_room(post.text.len()) {
            self.store_full.inc();
            return answer(
                reply,
                Err(unavailable("the store is busy; try again in a moment")),
            );
        }
        let mut placed = self.log.append(
            &self.name,
            Entry {
                from: post.from.clone(),
                text: post.text.clone(),
                ts: now_ms(),
                cid: post.cid.clone(),
                session: post.session.clone(),
                author: post.author,
                change: post.change,
                reply: post.reply,
            },
        );
        self.appending.push_back(Appending {
            session: post.session,
            cid: post.cid,
            from: post.from,
            text: post.text,
            change: post.change,
            reply: post.reply,
            received: post.received,
            replies: reply.into_iter().collect(),
            relays: Vec::new(),
        });
        // A store that answers at once (memory) is settled now, when
        // nothing older is in flight: no trip through the actor's loop.
        if self.appends.is_empty() {
            match placed.try_recv() {
                Ok(result) => return self.appended(result),
                Err(oneshot::error::TryRecvError::Closed) => {
                    return self.appended(Err(StoreError::Stopped));
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
        }
        self.appends.push_back(placed);
    }

    /// Demo clients get the bytes as a `message`, exactly as sent, in the
    /// order posted: after the messages still being stored (the original
    /// server keeps one sender's broadcasts in order, text or not). They
    /// are not stored, so they reach this process's members only.
    pub(super) fn relay(&mut self, payload: &[u8]) {
        if self.members.values().all(|m| m.chat_client) {
            return;
        }
        let frame = Frame::notify(name::MESSAGE, Bytes::copy_from_slice(payload)).encode();
        if let Some(last) = self.appending.back_mut() {
            last.relays.push(frame);
            return;
        }
        self.deliver(None, |m| (!m.chat_client).then(|| frame.clone()));
    }

    fn deliver_relays(&mut self, relays: Vec<Bytes>) {
        for frame in relays {
            self.deliver(None, |m| (!m.chat_client).then(|| frame.clone()));
        }
    }

    /// The oldest append in flight was placed (or not).
    pub(super) fn appended(&mut self, result: Result<Placed, StoreError>) {
        let Some(entry) = self.appending.pop_front() else {
            return;
        };
        match result {
            Ok(done) => {
                let said = Said {
                    seq: done.seq,
                    ts: done.ts,
                };
                let fresh =
                    done.fresh && done.seq > self.delivered && done.epoch == self.cache.epoch();
                if fresh {
                    self.posted.insert(done.seq, entry.received);
                    let mut msg = Msg::new(
                        self.name.to_string(),
                        done.epoch,
                        done.seq,
                        entry.from,
                        entry.text,
                        done.ts,
                    );
                    msg.cid = entry.cid;
                    msg.kind = entry.change.map(|c| c.kind);
                    msg.of = entry.change.map(|c| c.of);
                    msg.reply = entry.reply;
                    self.pending.entry(done.seq).or_insert(msg);
                }
                self.head = self.head.max(done.seq);
                if done.seq <= self.delivered {
                    for reply in entry.replies {
                        let _ = reply.send(Ok(said));
                    }
                    self.deliver_relays(entry.relays);
                } else {
                    let waiting = self.acks.entry(done.seq).or_default();
                    waiting.extend(entry.replies.into_iter().map(|r| (r, said)));
                    if !entry.relays.is_empty() {
                        self.relays
                            .entry(done.seq)
                            .or_default()
                            .extend(entry.relays);
                    }
                }
                self.drain();
            }
            Err(StoreError::Refused(why)) => {
                let code = match why {
                    Refusal::NotYours => ErrorCode::Forbidden,
                    _ => ErrorCode::BadRequest,
                };
                for reply in entry.replies {
                    let _ = reply.send(Err(ErrorBody::new(code, why.to_string())));
                }
                self.deliver_relays(entry.relays);
            }
            Err(e) => {
                warn!(room = %self.name, error = %e, "could not store a message");
                for reply in entry.replies {
                    let _ = reply.send(Err(unavailable(
                        "the message could not be stored; try again",
                    )));
                }
                self.deliver_relays(entry.relays);
            }
        }
    }

    /// Delivers what follows `delivered` without a gap; reads a gap back
    /// from the log.
    pub(super) fn drain(&mut self) {
        loop {
            let next = self.delivered + 1;
            // Anything at or below `delivered` is a duplicate.
            while let Some(entry) = self.pending.first_entry() {
                if *entry.key() > self.delivered {
                    break;
                }
                entry.remove();
            }
            let Some(msg) = self.pending.remove(&next) else {
                break;
            };
            let received = self.posted.remove(&next);
            self.deliver_msg(msg, received);
            if let Some(relays) = self.relays.remove(&next) {
                self.deliver_relays(relays);
            }
        }
        while let Some(entry) = self.acks.first_entry() {
            if *entry.key() > self.delivered {
                break;
            }
            for (reply, said) in entry.remove() {
                let _ = reply.send(Ok(said));
            }
        }
        let wanted = self
            .pending
            .first_key_value()
            .map(|(seq, _)| seq - 1)
            .unwrap_or(0)
            .max(self.head);
        if wanted > self.delivered {
            self.fetch(self.delivered + 1, wanted);
        }
    }

    /// A message's frames: `msg` for chat clients and, only if a demo client
    /// is here to get it, `message` with the raw text.
    fn msg_frames(&self, msg: &Msg) -> (Bytes, Option<Bytes>) {
        let chat = Frame::notify(name::MSG, json(msg)).encode();
        // The original demo has no edits or deletes: it gets messages only.
        let demo = (msg.kind.is_none() && self.members.values().any(|m| !m.chat_client))
            .then(|| Frame::notify(name::MESSAGE, Bytes::from(msg.text.clone())).encode());
        (chat, demo)
    }

    fn deliver_msg(&mut self, msg: Msg, received: Option<Instant>) {
        let seq = msg.seq;
        let (chat, demo) = self.msg_frames(&msg);
        if msg.kind.is_some() {
            // Joins and recovery from the cache see the message's final state.
            self.cache.apply(&msg);
        }
        // The cache takes every message in order; it cannot fail.
        let _ = self.cache.push(msg, None);
        self.delivered = seq;
        self.deliver(None, |m| {
            if m.chat_client {
                Some(chat.clone())
            } else {
                demo.clone()
            }
        });
        if let Some(at) = received {
            self.fanout.observe(at.elapsed().as_secs_f64());
        }
    }

    /// Reads entries `from..=to` back from the log (a long gap in pieces).
    fn fetch(&mut self, from: u64, to: u64) {
        if self.fetching || !self.ready {
            return;
        }
        self.fetching = true;
        let to = to.min(from + FETCH_AT_MOST - 1);
        let read = self.log.range(&self.name, from, to);
        self.spawn_task(async move {
            Task::Fetched {
                from,
                result: read.await,
            }
        });
    }

    pub(super) fn fetched(&mut self, from: u64, result: Result<Vec<Msg>, StoreError>) {
        self.fetching = false;
        match result {
            Ok(msgs) => {
                let epoch = self.cache.epoch().to_owned();
                let first = msgs.first().map(|m| m.seq);
                for msg in msgs {
                    if msg.seq > self.delivered && msg.epoch == epoch {
                        self.pending.entry(msg.seq).or_insert(msg);
                    }
                }
                if from == self.delivered + 1 && first != Some(from) {
                    // The log no longer has `from`: trimmed past it. Skip
                    // to what it has (clients see the jump and reload).
                    let skip_to = first.or_else(|| self.pending.first_key_value().map(|(s, _)| *s));
                    if let Some(to) = skip_to {
                        warn!(room = %self.name, from, to, "messages were trimmed before this room read them");
                        self.cache = Ring::cache(self.capacity, epoch, Vec::new(), to - 1);
                        self.delivered = to - 1;
                    }
                }
                self.drain();
            }
            Err(e) => {
                debug!(room = %self.name, error = %e, "cannot read the log; retrying with the next head");
            }
        }
    }

    /// An entry another process stored.
    pub(super) fn remote_entry(&mut self, msg: Msg) {
        if msg.seq > self.delivered && self.ready && msg.epoch == self.cache.epoch() {
            self.head = self.head.max(msg.seq);
            self.pending.entry(msg.seq).or_insert(msg);
            self.drain();
        }
    }

    /// The log's head `seq`, read now and then.
    pub(super) fn head(&mut self, head: u64) {
        if !self.ready {
            self.read_snapshot();
            return;
        }
        self.head = self.head.max(head);
        self.expire();
        if self.head > self.delivered {
            self.drain();
        }
    }

    /// Drops from the cache what age retention dropped from the log.
    pub(super) fn expire(&mut self) {
        if let Some(cutoff) = self.log.expiry_cutoff() {
            self.cache.expire(cutoff);
        }
    }
}
