//! The socket client: protocol, reconnect, recovery. No Leptos here: the
//! reactive state (`crate::state`) consumes what this module emits.
//!
//! - [`socket::Socket`]: one logical connection to `/socket` that reconnects
//!   with exponential backoff and jitter; `notify`, `call` (dropped or timed
//!   out calls send a Reset) and a stream per incoming event.
//! - [`chat::ChatClient`]: the chat layer on top: `hello` on every (re)connect
//!   with the session and a cursor per room, recovery, and a queue of `say`s
//!   that survives disconnects (the `cid` makes re-sending safe). What it
//!   decides (cursors, held messages, the queue) is plain Rust with no
//!   browser in it (`chat/sync`), tested natively.
//! - [`account`]: the accounts API (`/api/…`, JSON over HTTP): who am I,
//!   sign up, sign in, sign out. The cookie it sets rides the socket.

pub mod account;
pub mod backoff;
pub mod chat;
pub mod socket;

/// Milliseconds since the page loaded (monotonic).
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Sleeps for `ms` milliseconds.
pub async fn sleep_ms(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}
