//! The load generator: it starts each server as its own process, drives it
//! through the `shared` codec with many WebSocket clients, and reads the
//! server's CPU time and memory from `/proc`.
//!
//! One job per module: `matrix` (what runs, at which size), `runs` (one run:
//! start, measure, stop), `scenario` (the scenarios), `client` (the seed and
//! rich clients), `process` (servers as child processes), `report` (what is
//! printed and written); `main.rs` reads the command line and goes through
//! the matrix.

pub mod client;
pub mod matrix;
pub mod process;
pub mod report;
pub mod runs;
pub mod scenario;

/// The value after `name` on the command line, if any.
pub fn arg_value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

/// Whether `name` is on the command line.
pub fn arg_flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// Prints the line the bench (and the chat server's scripts) wait for:
/// `listening on http://ADDR`.
pub fn announce(addr: std::net::SocketAddr) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}")?;
    out.flush()
}
