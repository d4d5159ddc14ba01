//! Passwords: what one must be, and their argon2id hashes.
//!
//! Hashing uses argon2id with OWASP's minimum (19 MiB of memory, two
//! passes, one lane). One hash costs tens of milliseconds of one core and
//! 19 MiB, so it never runs on the async threads: it runs on the blocking
//! pool, and at most [`Hasher::new`]'s `at_once` run together; the rest
//! wait their turn. A sign-in for an unknown name verifies against a dummy
//! hash, so it costs, and takes, what a wrong password does.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use std::{
    collections::HashSet,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};
use tokio::sync::Semaphore;

/// Fewest characters a password has.
pub const MIN_CHARS: usize = 8;
/// Most bytes a password has (hashing input is bounded).
pub const MAX_BYTES: usize = 256;

/// Memory (KiB), passes and lanes: OWASP's minimum for argon2id.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Weak {
    /// Shorter than [`MIN_CHARS`].
    #[error("passwords are at least {MIN_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_BYTES`].
    #[error("passwords are at most {MAX_BYTES} bytes")]
    TooLong,
    /// On the list of common passwords.
    #[error("that password is one of the most common ones; choose another")]
    Common,
    /// The username, or the username with a few digits or signs around it.
    #[error("a password cannot be the username")]
    Username,
}

/// Whether `password` may be used by `username`: long enough, not too
/// long, not the username, not a common password (compared case-
/// insensitively, as people capitalise the common ones too).
pub fn check(password: &str, username: &str) -> Result<(), Weak> {
    if password.len() > MAX_BYTES {
        return Err(Weak::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(Weak::TooShort);
    }
    let lower = password.to_lowercase();
    let name = username.to_lowercase();
    // The name with a few digits or signs around it is the name.
    if !name.is_empty()
        && let Some(rest) = lower.split_once(&name).map(|(a, b)| format!("{a}{b}"))
        && (rest.chars().count() < 5 || !rest.chars().any(char::is_alphabetic))
    {
        return Err(Weak::Username);
    }
    if common().contains(lower.as_str()) {
        return Err(Weak::Common);
    }
    Ok(())
}

/// The shipped list (`server/data/common-passwords.txt`), as a set.
fn common() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../../data/common-passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// argon2 refused (a parameter or the salt; not a wrong password).
    #[error("password hashing: {0}")]
    Hash(argon2::password_hash::Error),
    /// A stored hash is not a PHC string this server can read.
    #[error("a stored password hash cannot be read: {0}")]
    Stored(argon2::password_hash::Error),
    /// The blocking task failed.
    #[error("password hashing task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// As many hashes as allowed are running and as many are waiting.
    #[error("too many passwords are being checked; try again in a moment")]
    Busy,
}

/// Hashes and verifies passwords, a bounded number at once.
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Hashes waiting for a permit now, and at most.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

fn argon() -> Argon2<'static> {
    // The parameters are constants within argon2's bounds.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// 16 random bytes from the operating system's generator, as a salt.
fn salt() -> Result<SaltString, argon2::password_hash::Error> {
    SaltString::encode_b64(&rand::random::<[u8; 16]>())
}

/// A hash of a password nobody knows, to verify unknown names against.
fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret: [u8; 16] = rand::random();
        salt()
            .and_then(|salt| argon().hash_password(&secret, &salt).map(|h| h.to_string()))
            .unwrap_or_default()
    })
}

/// One hash waiting for a permit.
struct Waiter(Arc<AtomicUsize>);

impl Drop for Waiter {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    /// At most `at_once` hashes run together (at least one), and 16 times
    /// as many wait.
    pub fn new(at_once: usize) -> Self {
        Self::bounded(at_once, at_once.max(1) * 16)
    }

    /// At most `at_once` hashes run together (at least one) and
    /// `max_waiting` wait for their turn; more are refused with
    /// [`Error::Busy`] (a flood queues no work without bound).
    pub fn bounded(at_once: usize, max_waiting: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(at_once.max(1))),
            waiting: Arc::default(),
            max_waiting,
            running: Arc::default(),
            peak: Arc::default(),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(Error::Busy);
                }
                // Counted out however the wait ends (a request dropped
                // while waiting too).
                let _waiter = Waiter(self.waiting.clone());
                // The semaphore is never closed.
                self.permits.clone().acquire_owned().await.ok()
            }
        };
        let (running, peak) = (self.running.clone(), self.peak.clone());
        let answer = tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::AcqRel) + 1;
            peak.fetch_max(now, Ordering::AcqRel);
            let answer = work();
            running.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
            answer
        })
        .await?;
        Ok(answer)
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for
    /// `password`, with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let password = password.to_owned();
        self.run(move || {
            salt()
                .and_then(|salt| {
                    argon()
                        .hash_password(password.as_bytes(), &salt)
                        .map(|h| h.to_string())
                })
                .map_err(Error::Hash)
        })
        .await?
    }

    /// Whether `password` matches `stored`. `None` (no such account)
    /// costs the same as a wrong password and answers `false`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, Error> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move || {
            let known = stored.is_some();
            let against: &str = match &stored {
                Some(hash) => hash,
                None => dummy(),
            };
            let parsed = PasswordHash::new(against).map_err(Error::Stored)?;
            let matches = argon()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await?
    }

    /// The most hashes that ever ran at once (for tests and metrics).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests;
