//! Limits on texts and replies, and the per-connection rate limiter
//! (names are in [`crate::names`]).

use shared::chat::{ErrorBody, ErrorCode, Msg};
use std::time::{Duration, Instant};

/// Longest nickname, in characters.
pub const MAX_NICK_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = shared::room_name::MAX_ROOM_CHARS;
/// Longest client message id, in bytes.
pub const MAX_CID_BYTES: usize = 64;
/// Most messages one `history` call returns.
pub const MAX_HISTORY_LIMIT: u16 = 200;
/// Messages of history sent with a room's state when there is nothing to recover.
pub const JOIN_HISTORY: usize = 50;
/// Rooms with more members than this list only this many names in
/// `RoomState.members` and send no join/leave/rename presence (each change
/// would go to everyone: quadratic in the room's size).
pub const PRESENCE_LIMIT: usize = 1_000;

fn bad(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message)
}

/// Most rooms a `rooms` reply lists (the busiest).
pub const MAX_ROOMS_LISTED: usize = 200;

/// About how many bytes a message takes in a JSON reply (an upper bound:
/// every character that JSON escapes is counted escaped).
pub fn msg_bytes(m: &Msg) -> usize {
    fn escaped(s: &str) -> usize {
        s.chars()
            .map(|c| match c {
                '"' | '\\' | '\n' | '\t' | '\r' => 2,
                c if c.is_control() => 6,
                c => c.len_utf8(),
            })
            .sum()
    }
    // {"room":"","epoch":"","seq":,"from":"","text":"","ts":,"cid":""},
    64 + 20
        + 20
        + escaped(&m.room)
        + escaped(&m.epoch)
        + escaped(&m.from)
        + escaped(&m.text)
        + m.cid.as_deref().map_or(0, escaped)
}

/// The newest of `msgs` (oldest first) that fit in `budget` bytes; the
/// older ones are dropped (a client pages them with `history`).
pub fn newest_within(mut msgs: Vec<Msg>, budget: usize) -> Vec<Msg> {
    let mut used = 0;
    let keep = msgs
        .iter()
        .rev()
        .take_while(|m| {
            used += msg_bytes(m);
            used <= budget
        })
        .count();
    msgs.drain(..msgs.len() - keep);
    msgs
}

/// A client message id: 1–64 bytes.
pub fn cid(raw: &str) -> Result<(), ErrorBody> {
    if raw.is_empty() || raw.len() > MAX_CID_BYTES {
        return Err(bad("cid must be 1 to 64 bytes"));
    }
    Ok(())
}

/// What the limiter says about one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refuse this one (error for a request, drop for a notify).
    Refuse,
    /// Sustained abuse: close the connection with 1008.
    Abuse,
}

/// Token bucket with an abuse counter, one per connection.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    abuse_limit: u32,
    refusals: u32,
    window_start: Instant,
}

const ABUSE_WINDOW: Duration = Duration::from_secs(10);

impl RateLimiter {
    /// A full bucket. `rate == 0` allows everything.
    pub fn new(rate: u32, burst: u32, abuse_limit: u32) -> Self {
        let now = Instant::now();
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
            abuse_limit,
            refusals: 0,
            window_start: now,
        }
    }

    /// Takes a token if there is one.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.rate == 0.0 {
            return Verdict::Allow;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window_start) > ABUSE_WINDOW {
            self.window_start = now;
            self.refusals = 0;
        }
        self.refusals += 1;
        if self.refusals > self.abuse_limit {
            Verdict::Abuse
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_the_newest_messages_that_fit() {
        let msg = |seq: u64, text: &str| {
            Msg::new("r".into(), "e".into(), seq, "a".into(), text.into(), 0)
        };
        let msgs: Vec<Msg> = (1..=10).map(|s| msg(s, &"x".repeat(100))).collect();
        let one = msg_bytes(&msgs[0]);
        assert!(one >= 100 + 64, "{one}");
        let kept = newest_within(msgs.clone(), one * 3 + 1);
        assert_eq!(kept.iter().map(|m| m.seq).collect::<Vec<_>>(), [8, 9, 10]);
        assert!(newest_within(msgs, 10).is_empty());
        let quotes = msg(1, &"\"".repeat(10));
        assert!(msg_bytes(&quotes) >= msg_bytes(&msg(1, &"x".repeat(20))));
    }

    #[test]
    fn bucket_allows_burst_then_refuses_then_flags_abuse() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(10, 3, 2);
        assert_eq!(l.check(t0), Verdict::Allow);
        assert_eq!(l.check(t0), Verdict::Allow);
        assert_eq!(l.check(t0), Verdict::Allow);
        assert_eq!(l.check(t0), Verdict::Refuse);
        assert_eq!(l.check(t0), Verdict::Refuse);
        assert_eq!(l.check(t0), Verdict::Abuse);
        // 100 ms later one token is back.
        assert_eq!(l.check(t0 + Duration::from_millis(100)), Verdict::Allow);
    }

    #[test]
    fn zero_rate_never_limits() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(0, 1, 1);
        for _ in 0..10_000 {
            assert_eq!(l.check(t0), Verdict::Allow);
        }
    }
}
