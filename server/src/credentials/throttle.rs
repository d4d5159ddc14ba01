//! Sign-in throttling, by key: an account's name key and a client's
//! address are each a key, and a sign-in checks both. After `free`
//! failures in a row a key waits `every` between tries; a success clears
//! it. An unknown name is a key like any other, so the throttle answers
//! the same whether the account exists or not.
//!
//! Bounded: at most `max_keys` keys are held. When full, keys quiet for
//! `forget_after` go first, then the oldest half; a flood of made-up names
//! can so shorten another key's wait, never lengthen it or grow memory
//! (and the flood is itself throttled by its addresses).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How a key is throttled.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Failures in a row before tries are spaced.
    pub free: u32,
    /// The time between tries after that.
    pub every: Duration,
    /// A key with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Most keys held.
    pub max_keys: usize,
}

impl Default for Rules {
    /// 3 failures, then one try every 5 s; forgotten after 15 minutes
    /// quiet; 100,000 keys.
    fn default() -> Self {
        Self {
            free: 3,
            every: Duration::from_secs(5),
            forget_after: Duration::from_secs(15 * 60),
            max_keys: 100_000,
        }
    }
}

/// Whether a key may try now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try.
    Go,
    /// Not before this long.
    Wait(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// Failures by key.
pub struct Throttle {
    rules: Rules,
    keys: Mutex<HashMap<String, Record>>,
}

impl Throttle {
    /// A throttle with `rules`.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            keys: Mutex::default(),
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // Single map operations: a poisoned lock is consistent.
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` may try at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Verdict {
        let keys = self.keys();
        let Some(record) = keys.get(key) else {
            return Verdict::Go;
        };
        if record.failures < self.rules.free
            || now.saturating_duration_since(record.last) >= self.rules.forget_after
        {
            return Verdict::Go;
        }
        let open = record.last + self.rules.every;
        if now >= open {
            Verdict::Go
        } else {
            Verdict::Wait(open - now)
        }
    }

    /// `key` failed at `now`.
    pub fn failed(&self, key: &str, now: Instant) {
        let mut keys = self.keys();
        if !keys.contains_key(key) && keys.len() >= self.rules.max_keys {
            self.make_room(&mut keys, now);
        }
        let record = keys.entry(key.to_owned()).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(record.last) >= self.rules.forget_after {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
    }

    /// `key` succeeded: its failures are forgotten.
    pub fn succeeded(&self, key: &str) {
        self.keys().remove(key);
    }

    /// Keys held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.keys().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make_room(&self, keys: &mut HashMap<String, Record>, now: Instant) {
        let forget = self.rules.forget_after;
        keys.retain(|_, r| now.saturating_duration_since(r.last) < forget);
        if keys.len() < self.rules.max_keys {
            return;
        }
        let mut lasts: Vec<Instant> = keys.values().map(|r| r.last).collect();
        let middle = lasts.len() / 2;
        let (_, cut, _) = lasts.select_nth_unstable(middle);
        let cut = *cut;
        keys.retain(|_, r| r.last > cut);
    }
}

#[cfg(test)]
mod tests;
