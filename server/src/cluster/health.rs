//! Whether Redis can be used: the health check (reachable, and fsyncing
//! every write unless lossy is allowed) and what rooms are told.

use super::*;

/// What a health check found.
pub(super) enum Probe {
    Usable,
    /// It answers but does not fsync every write, and that is not allowed.
    Lossy(String),
    Unreachable(StoreError),
}

/// Pings Redis (and reads its durability, unless lossy is allowed); on a
/// change, tells every room (degraded / back).
pub(super) async fn health(cluster: Arc<Cluster>) {
    let mut every = ticker(HEALTH_EVERY);
    while next_tick(&cluster, &mut every).await {
        let probe = cluster.probe(false).await;
        let ok = matches!(probe, Probe::Usable);
        let lossy = matches!(probe, Probe::Lossy(_));
        if lossy != cluster.lossy.swap(lossy, Ordering::Relaxed)
            && let Probe::Lossy(why) = &probe
        {
            error!(
                %why,
                "redis does not fsync every write: refusing to store messages in it \
                 (run it with `appendfsync always`, or pass --redis-allow-lossy)"
            );
        }
        cluster.metrics.redis_up.set(i64::from(ok));
        if ok != cluster.healthy.swap(ok, Ordering::Relaxed) {
            if ok {
                info!("redis is reachable again");
                *cluster
                    .reachable_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
                let _ = cluster.heartbeat().await;
                cluster.retry_releases();
                cluster.retry_saves();
                cluster.reclaim_nicks().await;
            } else {
                warn!("redis is unreachable: rooms are degraded");
            }
            for tx in cluster.room_senders() {
                let _ = tx.send(BusEvent::Health(ok)).await;
            }
        }
    }
}

impl Cluster {
    /// Whether Redis answered the last health check (and, unless
    /// `--redis-allow-lossy`, fsyncs every write).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Redis as `/healthz` reports it: `ok`, `unreachable`, or
    /// `not_durable` (it answers, but is refused: see [`durability`]).
    pub fn redis_state(&self) -> &'static str {
        if self.healthy() {
            "ok"
        } else if self.lossy.load(Ordering::Relaxed) {
            "not_durable"
        } else {
            "unreachable"
        }
    }

    /// Whether Redis can be used now. Its durability is read when it must
    /// be enforced, and at start-up (`first`) to warn about it otherwise.
    pub(super) async fn probe(&self, first: bool) -> Probe {
        if let Err(e) = self.call::<String>(&redis::cmd("PING")).await {
            return Probe::Unreachable(e);
        }
        if self.config.allow_lossy && !first {
            return Probe::Usable;
        }
        let mut conn = self.conn.clone();
        match self
            .bounded(CALL_TIMEOUT * 2, durability::read(&mut conn))
            .await
        {
            Ok(durability::Durability::Fsynced) => Probe::Usable,
            Ok(durability::Durability::Lossy(why)) if self.config.allow_lossy => {
                warn!(
                    %why,
                    "redis does not fsync every write: acknowledged messages can be lost if \
                     it crashes (allowed by --redis-allow-lossy)"
                );
                Probe::Usable
            }
            Ok(durability::Durability::Lossy(why)) => Probe::Lossy(why),
            Err(e) => Probe::Unreachable(e),
        }
    }
}
