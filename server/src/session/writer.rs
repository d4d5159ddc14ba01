//! The writer task: drains the outbox into the socket in batches, sends
//! keep-alive pings, enforces the first-frame and silence deadlines, and
//! writes the close frame at the end. (The deadlines live here, on the
//! ticker it has anyway, rather than as timers of their own in every
//! connection's reader: idle connections are what the server holds most.)

use super::silence_limit;
use crate::metrics::Metrics;
use crate::outbox::{Ending, Kill, Receiver};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, stream::SplitSink};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::time::timeout;
use tracing::debug;

/// Frames written per flush at most.
const BATCH: usize = 64;
/// How long a close frame may take to go out before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type Sink = SplitSink<WebSocket, Message>;

/// Set in `last_heard` once the peer sent a protocol frame.
pub(super) const SPOKE: u64 = 1 << 63;

/// The writer's deadlines.
pub(super) struct Deadlines {
    /// Keep-alive interval (silence for two of them drops the peer).
    pub ping_every: Duration,
    /// Time a new socket has for its first frame.
    pub first_frame: Duration,
}

pub(super) async fn run(
    mut sink: Sink,
    mut rx: Receiver,
    kill: Kill,
    deadlines: Deadlines,
    last_heard: Arc<AtomicU64>,
    started: Instant,
    metrics: Arc<Metrics>,
) {
    let Deadlines {
        ping_every,
        first_frame,
    } = deadlines;
    let mut batch = Vec::new();
    let period = ping_every.min(first_frame);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pinged = started;
    loop {
        tokio::select! {
            biased;
            () = kill.fired() => break,
            n = rx.rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                let bytes: usize = batch.iter().map(Bytes::len).sum();
                let metered = crate::outbox::metered(&batch);
                metrics.messages_out.inc_by(n as u64);
                metrics.bytes_out.inc_by(bytes as u64);
                // A write that makes no progress fails by itself (the
                // stream's write deadline, see `listen`).
                let written = tokio::select! {
                    r = write_all(&mut sink, &mut batch) => r,
                    () = kill.fired() => break,
                };
                if written.is_err() {
                    kill.fire(Ending::Drop);
                    break;
                }
                rx.wrote(metered);
            }
            _ = ticker.tick() => {
                let heard = last_heard.load(Ordering::Relaxed);
                if heard & SPOKE == 0 && started.elapsed() >= first_frame {
                    kill.close(
                        shared::close::POLICY,
                        "no frame in time: say something after connecting",
                    );
                    break;
                }
                let heard = Duration::from_millis(heard & !SPOKE);
                if started.elapsed().saturating_sub(heard) > silence_limit(ping_every) {
                    debug!("peer silent for two ping intervals; dropping it");
                    kill.fire(Ending::Drop);
                    break;
                }
                if pinged.elapsed() + Duration::from_millis(5) >= ping_every {
                    pinged = Instant::now();
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        kill.fire(Ending::Drop);
                        break;
                    }
                }
            }
        }
    }
    // Boxed: its state would otherwise be part of every idle connection's task.
    Box::pin(finish(sink, rx, batch, kill.ending())).await;
}

async fn write_all(sink: &mut Sink, batch: &mut Vec<Bytes>) -> Result<(), axum::Error> {
    for frame in batch.drain(..) {
        sink.feed(Message::Binary(frame)).await?;
    }
    sink.flush().await
}

/// Writes the close frame (after what is queued, when asked), within
/// [`CLOSE_TIMEOUT`]; a peer that does not take it is simply dropped.
async fn finish(mut sink: Sink, mut rx: Receiver, mut batch: Vec<Bytes>, ending: Option<Ending>) {
    let Some(Ending::Close {
        code,
        reason,
        flush,
    }) = ending
    else {
        return;
    };
    let _ = timeout(CLOSE_TIMEOUT, async {
        if flush {
            rx.rx.close();
            batch.clear();
            while let Some(frame) = rx.rx.recv().await {
                batch.push(frame);
            }
            write_all(&mut sink, &mut batch).await?;
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        sink.send(Message::Close(Some(frame))).await?;
        sink.close().await
    })
    .await;
}
