//! The wire format shared by the chat server and its clients.
//!
//! - [`frame`]: the `websocket.io-rpc-v0.1` frame layer (byte-compatible with
//!   the original `web-socket-io` crates).
//! - [`event`]: event names of the chat layer.
//! - [`chat`]: JSON payload types of the chat layer, and the response envelope.
//! - [`close`]: WebSocket close codes.
//! - [`room_name`]: what a room may be called.
//!
//! This crate is portable: it builds for native targets and for
//! `wasm32-unknown-unknown`, and knows nothing of tokio, axum or web-sys.

pub mod chat;
pub mod close;
pub mod event;
pub mod frame;
pub mod room_name;
pub mod rooms;

pub use frame::{DecodeError, Frame, Name, NameTooLong};

/// The WebSocket subprotocol both sides must agree on.
pub const SUBPROTOCOL: &str = "websocket.io-rpc-v0.1";
