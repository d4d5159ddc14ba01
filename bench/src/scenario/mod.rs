//! The scenarios. Each takes a running server and returns its figures.
//!
//! One file per family: `fanout` (fan-out and latency, on one process or
//! spread over several; its receivers in `receive`), `idle` (idle memory),
//! `storm` (connect storm and restart), `signin` (sign-ins and a flood of
//! wrong ones), `search` (search on SQLite and in cluster mode; its
//! messages in `corpus`, sent by `fill`); `stats` (percentiles). This file
//! opens the clients they share.

mod corpus;
mod fanout;
mod fill;
mod idle;
mod receive;
mod search;
mod signin;
mod stats;
mod storm;

pub use corpus::Corpus;
pub use fanout::{Fanout, Load, Pace, fanout, fanout_across};
pub use idle::{Idle, idle};
pub use search::{Search, Timed, Timing, search};
pub use signin::{Pair, Signin, chat_latency, one_signin, summary as signin_summary};
pub use stats::Percentiles;
pub use storm::{Storm, storm};

use crate::{
    client::{self, Joined, Profile},
    process::ServerProc,
};
use futures_util::StreamExt;

/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;

/// Opens `n` clients.
pub async fn open_many(
    server: &ServerProc,
    profile: Profile,
    n: usize,
    join: bool,
) -> anyhow::Result<Vec<Joined>> {
    open_many_with(server, profile, n, join, false).await
}

/// [`open_many`], with small receive buffers if asked.
async fn open_many_with(
    server: &ServerProc,
    profile: Profile,
    n: usize,
    join: bool,
    small_buffer: bool,
) -> anyhow::Result<Vec<Joined>> {
    let addr = server.addr;
    let opened: Vec<anyhow::Result<Joined>> = futures_util::stream::iter(0..n)
        .map(|_| async move {
            client::open_with(addr, profile, join, None, small_buffer)
                .await
                .map(|(j, _)| j)
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    opened.into_iter().collect()
}
