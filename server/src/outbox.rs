//! A connection's bounded outbox and its kill switch.
//!
//! Everybody who sends to a connection (its own session, every room it is in)
//! holds an [`Outbox`]. Pushing never waits. The outbox is bounded in frames
//! and in bytes (frames of [`METERED`] bytes and more; smaller ones are
//! bounded by the frame bound): past either bound the client does not keep
//! up, and the connection is closed with 4008 instead of slowing anybody
//! else down.
//!
//! Before that, a quarter of the way there (the high-water mark), the
//! outbox reports itself [`Pushed::Slow`]: its rooms then stop taking new
//! posts until it drains (see `room::gate`), so a reader that keeps up,
//! only slower than a flood, is never cut; the flood is slowed instead. A
//! member whose socket takes nothing for the stall time is stuck, not
//! slow, and is not waited for (nor one that trickles past the mark for
//! [`TRICKLE`]): it is cut when its outbox overflows.

use bytes::Bytes;
use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Close code for a client whose outbox overflowed.
pub const CLOSE_TOO_SLOW: u16 = shared::close::TOO_SLOW;

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Send a close frame with this code and reason. `flush` first writes
    /// what is already queued.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Short reason for the peer.
        reason: &'static str,
        /// Write queued frames before the close frame.
        flush: bool,
    },
    /// Drop the connection without a close frame (peer gone or dead).
    Drop,
}

/// Fires once; the first ending wins.
#[derive(Debug, Clone, Default)]
pub struct Kill {
    token: CancellationToken,
    ending: Arc<Mutex<Option<Ending>>>,
}

impl Kill {
    /// Ends the connection the given way, unless it is already ending.
    pub fn fire(&self, ending: Ending) {
        if let Ok(mut slot) = self.ending.lock()
            && slot.is_none()
        {
            *slot = Some(ending);
        }
        self.token.cancel();
    }

    /// Ends the connection with a close frame (after what is queued).
    pub fn close(&self, code: u16, reason: &'static str) {
        self.fire(Ending::Close {
            code,
            reason,
            flush: true,
        });
    }

    /// How the connection is ending, once fired.
    pub fn ending(&self) -> Option<Ending> {
        self.ending.lock().ok().and_then(|slot| *slot)
    }

    /// Whether it fired.
    pub fn is_fired(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once fired.
    pub async fn fired(&self) {
        self.token.cancelled().await
    }
}

/// An outbox's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Frames queued at most.
    pub frames: usize,
    /// Bytes queued at most.
    pub bytes: usize,
}

/// How often a sender held back by a slow member looks again.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// How long a member may stay past its high-water mark, however slowly it
/// drains, before its rooms stop waiting for it (a reader that trickles
/// on purpose must not set the pace of a room for ever).
pub const TRICKLE: Duration = Duration::from_secs(30);

/// Milliseconds since the first call, never 0 (0 means "not set").
fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Frames at least this big count against the byte bound. Smaller ones
/// (chat messages, presence, acknowledgements: nearly everything) are
/// bounded by the frame bound alone, which bounds their bytes too
/// (`--outbox-frames` × 256 B, 1 MiB by default); so the common push costs
/// no atomic operation beyond the channel's own.
pub const METERED: usize = 256;

/// What is queued, shared by the pushers and the writer.
#[derive(Debug)]
pub(crate) struct Meter {
    /// Bytes of metered frames queued and not yet written.
    bytes: AtomicUsize,
    /// When the outbox went past its high-water mark ([`clock_ms`]); 0
    /// while it is below.
    high_since: AtomicU64,
    /// While past the mark: when its socket last took something (or when
    /// it went past the mark), so how long it has made no progress.
    progress_at: AtomicU64,
    bounds: Bounds,
    /// The high-water mark: a quarter of each bound.
    high: Bounds,
}

impl Meter {
    #[inline]
    fn high(&self, frames: usize, bytes: usize) -> bool {
        frames > self.high.frames || bytes > self.high.bytes
    }

    fn low(&self, frames: usize, bytes: usize) -> bool {
        frames <= self.high.frames / 2 && bytes <= self.high.bytes / 2
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, and the outbox is past its high-water mark.
    Slow,
    /// Not queued: the connection is gone, or was just found too slow (and
    /// is being closed with 4008).
    Gone,
}

/// How much an outbox holds its senders back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Below its low-water mark, or gone: no reason to wait.
    Clear,
    /// Past the high-water mark: wait at most this long for it to drain.
    Slow(Duration),
    /// Past the mark and its socket took nothing for the stall time (or
    /// it trickled for [`TRICKLE`]): it is not waited for.
    Stalled,
}

/// The sending side of a connection's outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Bytes>,
    kill: Kill,
    meter: Arc<Meter>,
}

/// The writer's side of an outbox.
pub(crate) struct Receiver {
    pub rx: mpsc::Receiver<Bytes>,
    meter: Arc<Meter>,
}

impl Receiver {
    /// Frames holding `metered` bytes of metered frames were written:
    /// count those out; while past the high-water mark, note the progress,
    /// and clear the mark once low again (the rooms waiting look again).
    pub(crate) fn wrote(&self, metered: usize) {
        let meter = &self.meter;
        let bytes = if metered > 0 {
            meter.bytes.fetch_sub(metered, Ordering::AcqRel) - metered
        } else {
            usize::MAX
        };
        if meter.high_since.load(Ordering::Acquire) == 0 {
            return;
        }
        meter.progress_at.store(clock_ms(), Ordering::Release);
        let bytes = if bytes == usize::MAX {
            meter.bytes.load(Ordering::Acquire)
        } else {
            bytes
        };
        if meter.low(self.rx.len(), bytes) {
            meter.high_since.store(0, Ordering::Release);
        }
    }
}

/// The bytes of a batch that count against the byte bound.
pub(crate) fn metered(batch: &[Bytes]) -> usize {
    batch
        .iter()
        .map(Bytes::len)
        .filter(|len| *len >= METERED)
        .sum()
}

impl Outbox {
    /// A new outbox within `bounds`, and its receiver.
    pub(crate) fn new(bounds: Bounds, kill: Kill) -> (Self, Receiver) {
        let frames = bounds.frames.max(1);
        let (tx, rx) = mpsc::channel(frames);
        let meter = Arc::new(Meter {
            bytes: AtomicUsize::new(0),
            high_since: AtomicU64::new(0),
            progress_at: AtomicU64::new(0),
            bounds: Bounds {
                frames,
                bytes: bounds.bytes.max(1),
            },
            high: Bounds {
                frames: frames / 4,
                bytes: bounds.bytes.max(1) / 4,
            },
        });
        (
            Self {
                tx,
                kill,
                meter: meter.clone(),
            },
            Receiver { rx, meter },
        )
    }

    fn too_slow(&self) -> Pushed {
        self.kill.fire(Ending::Close {
            code: CLOSE_TOO_SLOW,
            reason: "too slow: outbound queue overflowed",
            flush: false,
        });
        Pushed::Gone
    }

    /// Queues one encoded frame without waiting.
    #[inline]
    pub fn send(&self, frame: Bytes) -> Pushed {
        if frame.len() >= METERED {
            return self.send_metered(frame);
        }
        // The common case: a small frame, bounded by the frame count alone.
        if let Err(e) = self.tx.try_send(frame) {
            return self.refused(&e);
        }
        let frames = self.meter.bounds.frames - self.tx.capacity();
        if frames > self.meter.high.frames {
            return self.went_high();
        }
        Pushed::Queued
    }

    /// A frame that counts against the byte bound.
    #[inline(never)]
    fn send_metered(&self, frame: Bytes) -> Pushed {
        let len = frame.len();
        let meter = &self.meter;
        let bytes = meter.bytes.fetch_add(len, Ordering::AcqRel) + len;
        if bytes > meter.bounds.bytes {
            meter.bytes.fetch_sub(len, Ordering::AcqRel);
            return self.too_slow();
        }
        if let Err(e) = self.tx.try_send(frame) {
            meter.bytes.fetch_sub(len, Ordering::AcqRel);
            return self.refused(&e);
        }
        let frames = meter.bounds.frames - self.tx.capacity();
        if meter.high(frames, bytes) {
            return self.went_high();
        }
        Pushed::Queued
    }

    /// The channel refused a frame: full (too slow) or closed (gone).
    #[cold]
    fn refused(&self, e: &mpsc::error::TrySendError<Bytes>) -> Pushed {
        match e {
            mpsc::error::TrySendError::Full(_) => self.too_slow(),
            mpsc::error::TrySendError::Closed(_) => Pushed::Gone,
        }
    }

    /// Past the high-water mark (the frame is queued).
    #[cold]
    fn went_high(&self) -> Pushed {
        let now = clock_ms();
        if self
            .meter
            .high_since
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // The wait for progress starts when it goes past the mark.
            self.meter.progress_at.store(now, Ordering::Release);
        }
        Pushed::Slow
    }

    /// Queues one encoded frame without waiting; `false` when the
    /// connection is gone or was just found too slow.
    pub fn push(&self, frame: Bytes) -> bool {
        self.send(frame) != Pushed::Gone
    }

    /// Whether the connection is still there to receive.
    fn is_open(&self) -> bool {
        !self.tx.is_closed() && !self.kill.is_fired()
    }

    /// Bytes of metered frames queued now.
    pub fn queued_bytes(&self) -> usize {
        self.meter.bytes.load(Ordering::Acquire)
    }

    /// How long senders should wait for this outbox, given `stall`.
    pub fn pressure(&self, stall: Duration) -> Pressure {
        if !self.is_open() {
            return Pressure::Clear;
        }
        let since = self.meter.high_since.load(Ordering::Acquire);
        if since == 0 {
            return Pressure::Clear;
        }
        let now = clock_ms();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let idle = now.saturating_sub(self.meter.progress_at.load(Ordering::Acquire));
        let high = now.saturating_sub(since);
        if idle >= ms(stall) || high >= ms(TRICKLE) {
            Pressure::Stalled
        } else {
            Pressure::Slow(Duration::from_millis(
                (ms(stall) - idle).min(ms(TRICKLE) - high),
            ))
        }
    }

    /// Resolves once the outbox drains below its low-water mark or the
    /// connection ends. It polls (every 2 ms): only senders held back by a
    /// slow member wait here, and a wake-up list in every outbox would cost
    /// every idle connection its memory.
    pub async fn drained(&self) {
        while self.meter.high_since.load(Ordering::Acquire) != 0 && self.is_open() {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    /// Whether two handles are the same connection's outbox.
    pub fn same(&self, other: &Outbox) -> bool {
        Arc::ptr_eq(&self.meter, &other.meter)
    }
}

#[cfg(test)]
mod tests;
