//! The periodic tasks: heads (rooms catch up), age expiry of the streams,
//! heartbeats and reaping of dead nodes.

use super::*;

/// A ticker for a periodic task (late ticks are delayed, not bunched).
pub(super) fn ticker(period: Duration) -> tokio::time::Interval {
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every
}

/// Waits for the next tick; `false` once the cluster stops.
pub(super) async fn next_tick(cluster: &Cluster, every: &mut tokio::time::Interval) -> bool {
    tokio::select! {
        () = cluster.stop.cancelled() => false,
        _ = every.tick() => true,
    }
}

/// Tells each room the head `seq` Redis has for it, so a room that missed
/// a publication reads the gap from the stream; retries writes that failed
/// while the health check still passed.
pub(super) async fn heads(cluster: Arc<Cluster>) {
    let mut every = ticker(HEADS_EVERY);
    while next_tick(&cluster, &mut every).await {
        if !cluster.healthy() {
            continue;
        }
        // Writes that failed while the health check still passed.
        cluster.retry_releases();
        cluster.retry_saves();
        let rooms: Vec<(Arc<str>, mpsc::Sender<BusEvent>)> = cluster
            .locked()
            .iter()
            .filter_map(|(r, tx)| Some((r.clone(), tx.upgrade()?)))
            .collect();
        if !rooms.is_empty() {
            // Open here: listed as open in the cluster (a process whose
            // last member left may have taken a room off the list while
            // this one's members were on their way).
            let mut sadd = redis::cmd("SADD");
            sadd.arg(keys::ROOMS);
            for (room, _) in &rooms {
                sadd.arg(&**room);
            }
            cluster.fire(vec![(keys::GLOBAL.to_owned(), sadd)]);
        }
        for chunk in rooms.chunks(1_000) {
            let mut mget = redis::cmd("MGET");
            for (room, _) in chunk {
                mget.arg(keys::seq(room));
            }
            let Ok(heads) = cluster.call::<Vec<Option<u64>>>(&mget).await else {
                break;
            };
            for ((_, tx), head) in chunk.iter().zip(heads) {
                let _ = tx.try_send(BusEvent::Head(head.unwrap_or(0)));
            }
        }
    }
}

/// Drops messages older than `--retention-days` from every room's stream.
/// One node sweeps per period (whoever takes the period's lock), every
/// tenth of the age, between one second and one minute.
pub(super) async fn expire(cluster: Arc<Cluster>, age: Duration) {
    let period = (age / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let lock_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    let mut every = ticker(period);
    while next_tick(&cluster, &mut every).await {
        if !cluster.healthy() {
            continue;
        }
        let mut lock = redis::cmd("SET");
        lock.arg(keys::EXPIRE_LOCK)
            .arg(&cluster.node)
            .arg("NX")
            .arg("PX")
            .arg(lock_ms.saturating_sub(50).max(1));
        if !matches!(cluster.call::<Option<String>>(&lock).await, Ok(Some(_))) {
            continue;
        }
        let Some(cutoff) = cluster.expiry_cutoff() else {
            return;
        };
        let mut cursor = 0u64;
        let mut removed = 0;
        loop {
            let mut scan = redis::cmd("SSCAN");
            scan.arg(keys::LOGS).arg(cursor).arg("COUNT").arg(500);
            let Ok((next, rooms)) = cluster.call::<(u64, Vec<String>)>(&scan).await else {
                break;
            };
            for room in rooms {
                match cluster.expire_room(&room, cutoff).await {
                    Ok(n) => removed += n,
                    Err(e) => debug!(%room, error = %e, "could not expire old messages"),
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if removed > 0 {
            debug!(removed, "expired messages older than the retention age");
        }
    }
}

/// Refreshes this node's heartbeat and reaps nodes whose heartbeat expired.
pub(super) async fn nodes(cluster: Arc<Cluster>) {
    let mut every = ticker((cluster.config.node_ttl / 3).max(Duration::from_millis(100)));
    let mut holds = 0;
    while next_tick(&cluster, &mut every).await {
        if !cluster.healthy() {
            continue;
        }
        match cluster.heartbeat().await {
            Ok(true) => {
                // Listed anew: a peer took this node for dead and reaped it.
                warn!("this process was taken for stopped by a peer: its members are put back");
                cluster.resync_rooms();
                cluster.reclaim_nicks().await;
            }
            Ok(false) => {}
            Err(e) => {
                debug!(error = %e, "heartbeat failed");
                continue;
            }
        }
        match cluster.sweep_holds(holds).await {
            Ok(next) => holds = next,
            Err(e) => debug!(error = %e, "could not sweep expired nickname holds"),
        }
        let Ok(all) = cluster
            .call::<Vec<String>>(redis::cmd("SMEMBERS").arg(keys::NODES))
            .await
        else {
            continue;
        };
        // After an outage nobody could refresh a heartbeat: give every
        // node a full period to do so before reaping anyone.
        let since = *cluster
            .reachable_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if since.elapsed() < cluster.config.node_ttl {
            continue;
        }
        for node in all.into_iter().filter(|n| *n != cluster.node) {
            let alive = cluster
                .call::<bool>(redis::cmd("EXISTS").arg(keys::node(&node)))
                .await
                .unwrap_or(true);
            if alive {
                continue;
            }
            match cluster.reap(&node, false).await {
                Ok(0) => {}
                Ok(n) => info!(%node, members = n - 1, "reaped a node that stopped"),
                Err(e) => debug!(%node, error = %e, "could not reap a node"),
            }
        }
    }
}

impl Cluster {
    /// Refreshes this node's heartbeat; `true` when the node was not
    /// listed (its first heartbeat, or a peer reaped it).
    pub(super) async fn heartbeat(&self) -> Result<bool, StoreError> {
        let ttl_ms = u64::try_from(self.config.node_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(keys::node(&self.node))
            .arg(1)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .sadd(keys::NODES, &self.node);
        let mut conn = self.conn.clone();
        let (added,): (u64,) = self
            .bounded(CALL_TIMEOUT, pipe.query_async(&mut conn))
            .await?;
        Ok(added == 1)
    }

    /// When messages older than `--retention-days` are dropped: the cutoff
    /// in ms since the Unix epoch (`None`: kept until trimmed by count).
    pub(crate) fn expiry_cutoff(&self) -> Option<i64> {
        let age = i64::try_from(self.config.max_age?.as_millis()).unwrap_or(i64::MAX);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Some(now.saturating_sub(age))
    }

    /// Removes a room's messages older than `cutoff` from its stream;
    /// returns how many.
    pub(super) async fn expire_room(&self, room: &str, cutoff: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let mut invocation = self.expire.prepare_invoke();
            invocation
                .key(keys::log(room))
                .arg(cutoff)
                .arg(EXPIRE_BATCH);
            let mut con = self.conn.clone();
            let n = self
                .bounded(CALL_TIMEOUT, invocation.invoke_async::<u64>(&mut con))
                .await?;
            removed += n;
            if n < EXPIRE_BATCH {
                return Ok(removed);
            }
        }
    }

    /// Removes a node that stopped (or, `force`, this one as it stops):
    /// its members leave each of its rooms, then its nicknames and keys go.
    /// Room by room, since a room's keys may live on another shard; done
    /// again by the next reaper if this one stops half-way (each step is
    /// idempotent). Returns 0 when there was nothing to do, else 1 +
    /// members removed.
    pub(super) async fn reap(&self, node: &str, force: bool) -> Result<i64, StoreError> {
        let rooms: Vec<String> = self
            .call(redis::cmd("SMEMBERS").arg(keys::node_rooms(node)))
            .await?;
        let mut removed = 0;
        for chunk in rooms.chunks(500) {
            let cmds = chunk
                .iter()
                .map(|room| {
                    let mut cmd = redis::cmd("EVALSHA");
                    cmd.arg(self.reap_room.get_hash())
                        .arg(1)
                        .arg(keys::members(room))
                        .arg(format!("{node}:"))
                        .arg(node)
                        .arg(keys::channel(room));
                    (room.clone(), cmd)
                })
                .collect();
            let mut conn = self.conn.clone();
            for answer in conn.batch(&[&self.reap_room], cmds).await {
                removed += redis::from_redis_value::<i64>(answer?).map_err(Error::Parse)?;
            }
        }
        let mut invocation = self.reap_node.prepare_invoke();
        invocation
            .key(keys::NODES)
            .key(keys::NICKS)
            .key(keys::node_rooms(node))
            .key(keys::node_nicks(node))
            .key(keys::node(node))
            .arg(node)
            .arg(if force { "force" } else { "" })
            .arg(
                now_ms().saturating_add(
                    i64::try_from(self.config.session_ttl_secs.saturating_mul(1_000))
                        .unwrap_or(i64::MAX),
                ),
            );
        let mut con = self.conn.clone();
        let gone = self
            .bounded(CALL_TIMEOUT, invocation.invoke_async::<i64>(&mut con))
            .await?;
        if gone == 0 {
            if removed > 0 {
                // Its heartbeat came back while its members were being
                // removed: it puts them back.
                self.fire(vec![(
                    keys::control(node),
                    redis::cmd("PUBLISH")
                        .arg(keys::control(node))
                        .arg("resync")
                        .clone(),
                )]);
            }
            return Ok(0);
        }
        Ok(1 + removed)
    }

    /// Forgets nicknames held for sessions that expired, a slice of the
    /// hash at a time; returns where the next call goes on.
    pub(super) async fn sweep_holds(&self, cursor: u64) -> Result<u64, StoreError> {
        let mut invocation = self.sweep_holds.prepare_invoke();
        invocation.key(keys::NICKS).arg(cursor).arg(now_ms());
        let mut con = self.conn.clone();
        self.bounded(CALL_TIMEOUT, invocation.invoke_async::<u64>(&mut con))
            .await
    }
}
