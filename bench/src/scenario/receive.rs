//! One client's side of a fan-out run: it counts what arrives (distinct,
//! duplicated, out of order, and latencies), reports warm-ups, and frees
//! the rich sender's window as `say`s are acknowledged.

use crate::client::{self, Incoming, Profile};
use futures_util::{StreamExt, stream::SplitStream};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

/// Marks warm-up messages (sent until every receiver has seen one, so
/// nobody misses the start because its join was still on its way).
pub(super) const WARMUP: u32 = u32::MAX;
/// Request ids from here on are warm-ups (their acks free no window slot).
pub(super) const WARMUP_IDS: u32 = 2_000_000_000;

/// What one receiver saw.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) unique: u64,
    pub(super) duplicates: u64,
    pub(super) reordered: u64,
    pub(super) done_at: Option<Instant>,
    pub(super) latencies_us: Vec<u64>,
}

pub(super) struct Shared {
    pub(super) warmed: AtomicUsize,
    pub(super) warm: Notify,
    pub(super) delivered: AtomicU64,
    pub(super) window: Option<Arc<Semaphore>>,
    pub(super) refused: AtomicU64,
}

/// Reads one client's stream until it has all `m` messages or `stop`.
pub(super) async fn receive(
    mut stream: SplitStream<client::Ws>,
    profile: Profile,
    m: u32,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    keep_latency: bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut seen = vec![false; m as usize];
    let mut highest: Option<u32> = None;
    let mut warmed = false;
    let mut unreported = 0u64;
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = stop.changed() => break,
        };
        let Some(Ok(Message::Binary(data))) = msg else {
            if matches!(msg, Some(Ok(_))) {
                continue;
            }
            break;
        };
        match client::classify(profile, &data) {
            Incoming::Message { seq: WARMUP, .. } => {
                if !warmed {
                    warmed = true;
                    shared.warmed.fetch_add(1, Ordering::Relaxed);
                    shared.warm.notify_waiters();
                }
            }
            Incoming::Message { seq, sent_us } => {
                let Some(slot) = seen.get_mut(seq as usize) else {
                    continue;
                };
                if *slot {
                    tally.duplicates += 1;
                    continue;
                }
                *slot = true;
                tally.unique += 1;
                if highest.is_some_and(|h| seq < h) {
                    tally.reordered += 1;
                }
                highest = Some(highest.map_or(seq, |h| h.max(seq)));
                if keep_latency {
                    tally
                        .latencies_us
                        .push(client::now_us().saturating_sub(sent_us));
                }
                unreported += 1;
                if unreported == 64 {
                    shared.delivered.fetch_add(unreported, Ordering::Relaxed);
                    unreported = 0;
                }
                if tally.unique == u64::from(m) {
                    tally.done_at = Some(Instant::now());
                    break;
                }
            }
            Incoming::Answer { id, ok } => {
                if !ok {
                    shared.refused.fetch_add(1, Ordering::Relaxed);
                }
                if id < WARMUP_IDS
                    && let Some(w) = &shared.window
                {
                    w.add_permits(1);
                }
            }
            Incoming::Other => {}
        }
    }
    shared.delivered.fetch_add(unreported, Ordering::Relaxed);
    // A sender keeps reading acknowledgements after its own copy is in.
    if shared.window.is_some() && tally.done_at.is_some() {
        let window = shared.window.clone();
        tokio::spawn(async move {
            while let Some(Ok(Message::Binary(data))) = stream.next().await {
                if let Incoming::Answer { id, .. } = client::classify(profile, &data)
                    && id < WARMUP_IDS
                    && let Some(w) = &window
                {
                    w.add_permits(1);
                }
            }
        });
    }
    tally
}
