//! Where the connection is, and why a call has no answer: plain data, no
//! browser here.

use std::fmt;

/// Close code after which the client must not come back on its own
/// (bad origin, abuse, or its session was resumed elsewhere).
pub const CLOSE_POLICY: u16 = shared::close::POLICY;

/// Where the connection is.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Opening the socket.
    Connecting,
    /// Open: frames flow.
    Online,
    /// Lost; retry number `attempt` starts at `until_ms` (see [`now_ms`](crate::net::now_ms)).
    Reconnecting {
        /// Retry number, from 1.
        attempt: u32,
        /// When the retry starts.
        until_ms: f64,
    },
    /// Given up; only a new [`Socket`](super::Socket) (or
    /// [`Socket::retry_now`](super::Socket::retry_now)) tries again.
    Offline {
        /// Why, for people.
        reason: String,
    },
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The connection is not open, or was lost before the answer came.
    Disconnected,
    /// No answer in time; a Reset was sent.
    TimedOut,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Disconnected => f.write_str("not connected"),
            CallError::TimedOut => f.write_str("no answer in time"),
        }
    }
}
