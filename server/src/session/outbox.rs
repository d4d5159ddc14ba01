//! A connection's bounded outbox and its kill switch.
//!
//! Everybody who sends to a connection (its own session, every room it is in)
//! holds an [`Outbox`]. Pushing never waits: a full outbox means the client
//! does not keep up, and the connection is closed with 4008 instead of
//! slowing anybody else down.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Close code for a client whose outbox overflowed.
pub const CLOSE_TOO_SLOW: u16 = 4008;

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

/// The sending side of a connection's outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Bytes>,
    kill: Kill,
}

impl Outbox {
    /// A new outbox holding at most `capacity` frames, and its receiver.
    pub fn new(capacity: usize, kill: Kill) -> (Self, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx, kill }, rx)
    }

    /// Queues one encoded frame without waiting. Returns `false` when the
    /// connection is gone or was just found too slow (and is being closed).
    pub fn push(&self, frame: Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.fire(Ending::Close {
                    code: CLOSE_TOO_SLOW,
                    reason: "too slow: outbound queue overflowed",
                    flush: false,
                });
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether the connection is still there to receive.
    pub fn is_open(&self) -> bool {
        !self.tx.is_closed() && !self.kill.is_fired()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_fires_4008_and_first_ending_wins() {
        let kill = Kill::default();
        let (out, _rx) = Outbox::new(2, kill.clone());
        assert!(out.push(Bytes::from_static(b"a")));
        assert!(out.push(Bytes::from_static(b"b")));
        assert!(!out.push(Bytes::from_static(b"c")));
        assert!(kill.is_fired());
        kill.close(1000, "later");
        assert!(matches!(
            kill.ending(),
            Some(Ending::Close {
                code: CLOSE_TOO_SLOW,
                flush: false,
                ..
            })
        ));
        assert!(!out.is_open());
    }
}
