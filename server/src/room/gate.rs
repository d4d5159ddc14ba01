//! A room's intake: what holds a flood back before it reaches members.
//!
//! Two things, both waited on by the sender's session before its post goes
//! to the room (so a flooding client stops being read, and TCP pushes back
//! on it, instead of anyone's memory growing):
//!
//! - the **gate**: closed while a member's outbox is past its high-water
//!   mark, until it drains or has stalled there (a member that makes no
//!   progress is not waited for: it is cut when its outbox overflows, and
//!   never stalls the room for longer than the stall time);
//! - the **budget**: bytes of posts sent to the room actor but not yet
//!   handled, so what is already on its way when the gate closes is
//!   bounded too.

use crate::outbox::{Outbox, Pressure};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of posts on their way to one room actor at most.
pub(crate) const POST_BUDGET: usize = 256 * 1024;

/// A room's intake.
pub(crate) struct Intake {
    closed: AtomicBool,
    blockers: Mutex<Vec<Outbox>>,
    budget: Arc<Semaphore>,
    stall: Duration,
    waits: prometheus_client::metrics::counter::Counter,
}

impl Intake {
    /// Open, with the full budget; members past the mark are waited for at
    /// most `stall`; posts that wait are counted in `waits`.
    pub(crate) fn new(
        stall: Duration,
        waits: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            closed: AtomicBool::new(false),
            blockers: Mutex::new(Vec::new()),
            budget: Arc::new(Semaphore::new(POST_BUDGET)),
            stall,
            waits,
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, Vec<Outbox>> {
        // Pushes and removals only: a poisoned list is consistent.
        self.blockers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room actor found these members past their high-water mark.
    pub(crate) fn hold(&self, slow: Vec<Outbox>) {
        if slow.is_empty() {
            return;
        }
        let mut blockers = self.locked();
        for outbox in slow {
            if !blockers.iter().any(|b| b.same(&outbox)) {
                blockers.push(outbox);
            }
        }
        self.closed.store(true, Ordering::Release);
    }

    /// The first member still worth waiting for, and for how long at most;
    /// those that drained, stalled or left are dropped from the list.
    fn blocker(&self) -> Option<(Outbox, Duration)> {
        let mut blockers = self.locked();
        while let Some(first) = blockers.first() {
            match first.pressure(self.stall) {
                Pressure::Slow(wait) => return Some((first.clone(), wait)),
                Pressure::Clear | Pressure::Stalled => {
                    blockers.remove(0);
                }
            }
        }
        self.closed.store(false, Ordering::Release);
        None
    }

    /// Waits until the room takes posts, then takes `bytes` of its budget
    /// (given back when the actor has handled the post).
    pub(crate) async fn admit(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        if self.closed.load(Ordering::Acquire) {
            self.waits.inc();
        }
        while self.closed.load(Ordering::Acquire) {
            let Some((outbox, wait)) = self.blocker() else {
                break;
            };
            let _ = tokio::time::timeout(wait, outbox.drained()).await;
        }
        let want = u32::try_from(bytes.clamp(1, POST_BUDGET)).unwrap_or(u32::MAX);
        self.budget.clone().acquire_many_owned(want).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Bounds, Kill};
    use bytes::Bytes;

    #[tokio::test]
    async fn a_slow_member_closes_the_gate_until_it_drains() {
        let intake = Arc::new(Intake::new(Duration::from_secs(30), Default::default()));
        let (slow, mut rx) = Outbox::new(
            Bounds {
                frames: 100,
                bytes: 1_000,
            },
            Kill::default(),
        );
        for _ in 0..3 {
            slow.send(Bytes::from(vec![0; 300]));
        }
        intake.hold(vec![slow.clone()]);
        let waiting = {
            let intake = intake.clone();
            tokio::spawn(async move { intake.admit(10).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "held back while the member is slow");
        let mut batch = Vec::new();
        rx.rx.recv_many(&mut batch, 10).await;
        rx.wrote(900);
        let admitted = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("let through once drained")
            .expect("task");
        assert!(admitted);
    }

    #[tokio::test]
    async fn a_stalled_member_is_not_waited_for_past_the_stall_time() {
        let intake = Intake::new(Duration::from_millis(100), Default::default());
        let (stuck, _rx) = Outbox::new(
            Bounds {
                frames: 100,
                bytes: 1_000,
            },
            Kill::default(),
        );
        for _ in 0..3 {
            stuck.send(Bytes::from(vec![0; 300]));
        }
        intake.hold(vec![stuck]);
        let started = std::time::Instant::now();
        assert!(intake.admit(10).await.is_some());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(90) && waited < Duration::from_secs(5),
            "waited {waited:?}"
        );
    }
}
