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
    pub(super) reply: oneshot::Sender<Result<Placed, StoreError>>,
}

pub(super) enum Op {
    Append(AppendOp),
    /// Commands whose results nobody waits for.
    Fire(Vec<Cmd>),
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

/// Runs the queued writes, batched: one pipeline per batch, in queue
/// order, so one room's messages are stored in the order they were posted.
pub(super) async fn writer(cluster: Arc<Cluster>, mut rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        // Loaded each batch: after a Redis restart the script cache is empty.
        pipe.load_script(&cluster.append);
        pipe.load_script(&cluster.release);
        pipe.load_script(&cluster.hold);
        let mut waiting = Vec::new();
        let mut releases = Vec::new();
        let mut saves = Vec::new();
        let mut bytes = 0;
        for op in batch.drain(..) {
            match op {
                Op::Append(op) => {
                    bytes += op.bytes;
                    let room = &op.room;
                    let mut invocation = cluster.append.prepare_invoke();
                    let (cid_key, cid_ttl) = match &op.cid {
                        Some((session, cid)) => {
                            (keys::cid(room, session, cid), CID_TTL_SECS.to_string())
                        }
                        None => (keys::seq(room), String::new()),
                    };
                    let body = op.body.strip_prefix('{').unwrap_or(&op.body);
                    invocation
                        .key(keys::seq(room))
                        .key(keys::log(room))
                        .key(keys::epoch(room))
                        .key(cid_key)
                        .key(keys::LOGS)
                        .arg(body)
                        .arg(crate::ids::new_epoch())
                        .arg(cluster.config.retention.max(1))
                        .arg(cid_ttl)
                        .arg(op.ts)
                        .arg(keys::channel(room))
                        .arg(&**room);
                    pipe.invoke_script(&invocation);
                    waiting.push(Some((op.reply, op.ts)));
                }
                Op::Fire(cmds) => {
                    for cmd in cmds {
                        pipe.add_command(cmd);
                        waiting.push(None);
                    }
                }
                Op::Release(release) => {
                    // EVALSHA: the scripts were loaded at the start of the batch.
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
                    pipe.add_command(cmd);
                    waiting.push(None);
                    releases.push(release);
                }
                Op::Save(save) => {
                    pipe.add_command(cluster.session_set(&save.token, &save.json));
                    waiting.push(None);
                    saves.push(save);
                }
            }
        }
        let mut conn = cluster.conn.clone();
        let result =
            tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<Vec<Value>>(&mut conn)).await;
        cluster.queued.fetch_sub(bytes, Ordering::AcqRel);
        let result = match result {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable("timed out")),
        };
        let values = match result {
            Ok(values) => values,
            Err(e) => {
                cluster.metrics.redis_errors.inc();
                fail_all(waiting, &e);
                cluster.defer_releases(releases);
                cluster.defer_saves(saves);
                continue;
            }
        };
        cluster.settle_saves(&saves);
        for (value, reply) in values.into_iter().skip(3).zip(waiting) {
            match (reply, value) {
                (Some((reply, ts)), value) => {
                    let _ = reply.send(appended(value, ts));
                }
                (None, Value::ServerError(e)) => debug!(error = ?e, "a presence write failed"),
                (None, _) => {}
            }
        }
    }
}

pub(super) type Waiting = Option<(oneshot::Sender<Result<Placed, StoreError>>, i64)>;

pub(super) fn fail_all(waiting: Vec<Waiting>, e: &StoreError) {
    for (reply, _) in waiting.into_iter().flatten() {
        let _ = reply.send(Err(e.clone()));
    }
}

impl Cluster {
    /// Queues commands whose answers nobody waits for (presence, sessions).
    /// While Redis is down they are dropped: rooms re-register their
    /// members when it is back.
    pub(crate) fn fire(&self, cmds: Vec<Cmd>) {
        if !self.healthy() {
            return;
        }
        if self.ops.try_send(Op::Fire(cmds)).is_err() {
            warn!("redis write queue is full; dropping a presence update");
        }
    }

    /// Appends a message; resolves once Redis has stored it (or could not).
    pub(super) fn append_body(
        &self,
        room: Arc<str>,
        from: &str,
        text: &str,
        ts: i64,
        cid: Option<(String, String)>,
    ) -> oneshot::Receiver<Result<Placed, StoreError>> {
        let (reply, rx) = oneshot::channel();
        if !self.healthy() {
            let _ = reply.send(Err(unavailable("not reachable")));
            return rx;
        }
        let bytes = text.len() + from.len() + 128;
        let queued = self.queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if queued > self.config.queue_bytes {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            let _ = reply.send(Err(unavailable("the write queue is full")));
            return rx;
        }
        let body = serde_json::to_string(&Body {
            epoch: String::new(),
            from: from.to_owned(),
            text: text.to_owned(),
            ts,
            cid: cid.as_ref().map(|(_, c)| c.clone()),
        })
        .unwrap_or_default();
        let op = Op::Append(AppendOp {
            room,
            bytes,
            body,
            ts,
            cid,
            reply,
        });
        if let Err(
            mpsc::error::TrySendError::Full(Op::Append(op))
            | mpsc::error::TrySendError::Closed(Op::Append(op)),
        ) = self.ops.try_send(op)
        {
            self.queued.fetch_sub(op.bytes, Ordering::AcqRel);
            let _ = op.reply.send(Err(unavailable("write queue is full")));
        }
        rx
    }
}
