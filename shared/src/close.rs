//! WebSocket close codes of the protocol (docs/PROTOCOL.md, "Close codes"),
//! one list for the server that sends them and the clients that read them.

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// Server shutting down (the client should reconnect).
pub const GOING_AWAY: u16 = 1001;
/// Protocol error.
pub const PROTOCOL: u16 = 1002;
/// Text frame (unsupported data).
pub const UNSUPPORTED: u16 = 1003;
/// Policy violation: bad origin, abuse, session taken over (the client must
/// not come back on its own).
pub const POLICY: u16 = 1008;
/// Message too big.
pub const TOO_BIG: u16 = 1009;
/// Internal error.
pub const INTERNAL: u16 = 1011;
/// Overloaded, try later.
pub const TRY_LATER: u16 = 1013;
/// The client did not keep up: its outbound queue overflowed.
pub const TOO_SLOW: u16 = 4008;
