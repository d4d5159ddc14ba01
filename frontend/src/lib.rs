//! The chat app: a Leptos client-side-rendered WebAssembly app.
//!
//! - [`net`]: the socket client (protocol, reconnect, recovery); no Leptos.
//! - [`state`]: turns the client's events into signals; actions.
//! - [`components`]: the views; they read [`state::Chat`] from context.

// `#[component]` expands to items this lint misreads as unreachable.
#![allow(unreachable_pub)]

pub mod components;
pub mod net;
pub mod state;

/// Mounts the app on `<body>`.
pub fn mount() {
    leptos::mount::mount_to_body(components::App);
}
