//! Identifiers: connections, session tokens (which are stored only as
//! hashes), and room history epochs.

/// Unique id of a connection, for the life of the process.
pub type ConnId = u64;

/// A new unguessable session token (128 random bits, hex).
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What is stored instead of a session token: its SHA-256, first 128 bits
/// in hex. A database or a Redis key holding it cannot be used to resume
/// the session.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random epoch name.
pub fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}
