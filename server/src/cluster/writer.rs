//! The batching writer: one task runs every queued write as one pipeline
//! per batch, in queue order (so one room's messages are stored in the
//! order posted); commands whose answers nobody waits for go the same way.

use super::*;

pub(super) struct AppendOp {
    pub(super) room: Arc<str>,
    /// What it counts for against the queue bound.
    pub(super) bytes: usize,
    pub(super) body: String,
    pub(super) ts: i64,
    pub(super) cid: Option<(String, String)>,
    /// An edit or delete: what the script checks and applies.
    pub(super) change: Option<crate::log::ChangeOf>,
    pub(super) author: Option<String>,
    pub(super) reply: oneshot::Sender<Result<Placed, StoreError>>,
}

pub(super) enum Op {
    Append(AppendOp),
    /// Commands whose results nobody waits for, each with its hash tag.
    Fire(Vec<(String, Cmd)>),
    /// A nickname to give back, or with `hold` (`~{until}:{session}`) to
    /// keep for its session (kept until it is done: a nickname that stayed
    /// claimed would be lost to everybody else).
    Release(Release),
    /// A session to save (kept until it is done, unless a newer save of
    /// the same session supersedes it).
    Save(UnsavedSession),
}

/// What [`Op::Release`] does to a connection's nickname.
#[derive(Debug, Clone)]
pub(super) struct Release {
    pub(super) nick: String,
    pub(super) conn: u64,
    /// Keep it for the session (`~{until}:{session}`) instead of freeing it.
    pub(super) hold: Option<String>,
}

/// What a command of a batch answers to.
enum Waiter {
    Append(oneshot::Sender<Result<Placed, StoreError>>, i64),
    Fire,
    Release(Release),
    Save(UnsavedSession),
}

/// Runs the queued writes, batched: one pipeline per batch (per hash tag
/// on a Redis Cluster), in queue order, so one room's messages are stored
/// in the order they were posted.
pub(super) async fn writer(cluster: Arc<Cluster>, mut rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Loaded with each batch: after a Redis restart the script cache is
    // empty.
    let scripts = [&cluster.append, &cluster.release, &cluster.hold];
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut cmds: Vec<(String, Cmd)> = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        let mut bytes = 0;
        for op in batch.drain(..) {
            match op {
                Op::Append(op) => {
                    bytes += op.bytes;
                    cmds.push((op.room.to_string(), cluster.append_cmd(&op)));
                    waiting.push(Waiter::Append(op.reply, op.ts));
                }
                Op::Fire(fired) => {
                    for cmd in fired {
                        cmds.push(cmd);
                        waiting.push(Waiter::Fire);
                    }
                }
                Op::Release(release) => {
                    // EVALSHA: the scripts are loaded with the batch.
                    let mut cmd = redis::cmd("EVALSHA");
                    let script = match release.hold {
                        Some(_) => &cluster.hold,
                        None => &cluster.release,
                    };
                    cmd.arg(script.get_hash())
                        .arg(1)
                        .arg(keys::NICKS)
                        .arg(crate::names::nick_key(&release.nick))
                        .arg(cluster.holder(release.conn, None));
                    if let Some(hold) = &release.hold {
                        cmd.arg(hold);
                    }
                    cmds.push((keys::GLOBAL.to_owned(), cmd));
                    waiting.push(Waiter::Release(release));
                }
                Op::Save(save) => {
                    cmds.push((
                        keys::session(&save.token),
                        cluster.session_set(&save.token, &save.json),
                    ));
                    waiting.push(Waiter::Save(save));
                }
            }
        }
        let mut conn = cluster.conn.clone();
        let answers = conn.batch(&scripts, cmds).await;
        cluster.queued.fetch_sub(bytes, Ordering::AcqRel);
        let mut failed = false;
        let (mut releases, mut saves, mut settled) = (Vec::new(), Vec::new(), Vec::new());
        for (answer, waiter) in answers.into_iter().zip(waiting) {
            failed |= answer.is_err();
            match (waiter, answer) {
                (Waiter::Append(reply, ts), answer) => {
                    let _ = reply.send(answer.and_then(|value| appended(value, ts)));
                }
                (Waiter::Fire, Err(e)) => debug!(error = %e, "a presence write failed"),
                (Waiter::Fire, Ok(_)) => {}
                (Waiter::Release(release), Err(_)) => releases.push(release),
                (Waiter::Release(_), Ok(_)) => {}
                (Waiter::Save(save), Err(_)) => saves.push(save),
                (Waiter::Save(save), Ok(_)) => settled.push(save),
            }
        }
        if failed {
            cluster.metrics.redis_errors.inc();
        }
        cluster.settle_saves(&settled);
        cluster.defer_releases(releases);
        cluster.defer_saves(saves);
    }
}

impl Cluster {
    /// Queues commands whose answers nobody waits for (presence, sessions).
    /// While Redis is down they are dropped: rooms re-register their
    /// members when it is back.
    pub(crate) fn fire(&self, cmds: Vec<(String, Cmd)>) {
        if !self.healthy() {
            return;
        }
        if self.ops.try_send(Op::Fire(cmds)).is_err() {
            warn!("redis write queue is full; dropping a presence update");
        }
    }

    /// The append script's call for `op`.
    fn append_cmd(&self, op: &AppendOp) -> Cmd {
        let room = &op.room;
        let (cid_key, cid_ttl) = match &op.cid {
            Some((session, cid)) => (keys::cid(room, session, cid), CID_TTL_SECS.to_string()),
            None => (keys::seq(room), String::new()),
        };
        let body = op.body.strip_prefix('{').unwrap_or(&op.body);
        let kind = match op.change.map(|c| c.kind) {
            None => "",
            Some(shared::chat::Change::Edit) => "edit",
            Some(shared::chat::Change::Delete) => "delete",
        };
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.append.get_hash())
            .arg(6)
            .arg(keys::seq(room))
            .arg(keys::log(room))
            .arg(keys::epoch(room))
            .arg(cid_key)
            .arg(keys::changed(room))
            .arg(keys::changes(room))
            .arg(body)
            .arg(crate::ids::new_epoch())
            .arg(self.config.retention.max(1))
            .arg(cid_ttl)
            .arg(op.ts)
            .arg(keys::channel(room))
            .arg(kind)
            .arg(op.change.map_or(0, |c| c.of))
            .arg(op.author.as_deref().unwrap_or_default())
            .arg(if op.change.is_some_and(|c| c.any) {
                "1"
            } else {
                "0"
            })
            .arg(crate::log::EDIT_WINDOW_MS);
        cmd
    }

    /// Appends a message; resolves once Redis has stored it (or could not).
    pub(super) fn append_body(
        &self,
        room: Arc<str>,
        entry: Entry,
    ) -> oneshot::Receiver<Result<Placed, StoreError>> {
        let Entry {
            from,
            text,
            ts,
            author,
            change,
            reply: reply_to,
            ..
        } = entry;
        let cid = entry.session.zip(entry.cid);
        let (reply, rx) = oneshot::channel();
        if !self.healthy() {
            let _ = reply.send(Err(Error::NotReachable.into()));
            return rx;
        }
        let bytes = text.len() + from.len() + 128;
        let queued = self.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if queued > self.config.queue_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            let _ = reply.send(Err(Error::QueueFull.into()));
            return rx;
        }
        let body = serde_json::to_string(&Body {
            epoch: String::new(),
            from,
            text,
            ts,
            cid: cid.as_ref().map(|(_, c)| c.clone()),
            kind: change.map(|c| c.kind),
            of: change.map(|c| c.of),
            author: author.clone(),
            changed: None,
            deleted: false,
            reply: reply_to,
        })
        .unwrap_or_default();
        let op = Op::Append(AppendOp {
            room,
            bytes,
            body,
            ts,
            cid,
            change,
            author,
            reply,
        });
        if let Err(
            mpsc::error::TrySendError::Full(Op::Append(op))
            | mpsc::error::TrySendError::Closed(Op::Append(op)),
        ) = self.ops.try_send(op)
        {
            self.queued.fetch_sub(op.bytes, Ordering::AcqRel);
            let _ = op.reply.send(Err(Error::QueueFull.into()));
        }
        rx
    }
}
