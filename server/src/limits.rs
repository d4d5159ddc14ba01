//! Validation of names and texts, and the per-connection rate limiter.

use shared::chat::{ErrorBody, ErrorCode};
use std::time::{Duration, Instant};

/// Longest nickname, in characters.
pub const MAX_NICK_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;
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

/// A room name: 1–32 of `a-z 0-9 - _`; upper case is folded to lower case.
pub fn room_name(raw: &str) -> Result<String, ErrorBody> {
    let name = raw.trim().to_lowercase();
    if name.chars().count() > MAX_ROOM_CHARS {
        return Err(ErrorBody::new(
            ErrorCode::TooLong,
            format!("room names are at most {MAX_ROOM_CHARS} characters"),
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(bad(
            "room names are 1 to 32 characters of a-z, 0-9, '-' and '_'",
        ));
    }
    Ok(name)
}

/// A nickname: trimmed, 1–32 characters, no control characters.
pub fn nick(raw: &str) -> Result<String, ErrorBody> {
    let nick = raw.trim();
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(ErrorBody::new(
            ErrorCode::TooLong,
            format!("nicknames are at most {MAX_NICK_CHARS} characters"),
        ));
    }
    if nick.is_empty() || nick.chars().any(char::is_control) {
        return Err(bad(
            "nicknames are 1 to 32 characters without control characters",
        ));
    }
    Ok(nick.to_owned())
}

/// A chat text: not blank, at most `max_chars` characters.
pub fn text(raw: &str, max_chars: usize) -> Result<(), ErrorBody> {
    if raw.trim().is_empty() {
        return Err(bad("message text is empty"));
    }
    let chars = raw.chars().count();
    if chars > max_chars {
        return Err(ErrorBody::new(
            ErrorCode::TooLong,
            format!("message is {chars} characters; the limit is {max_chars}"),
        ));
    }
    Ok(())
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
    fn room_names_fold_case_and_refuse_bad_characters() {
        assert_eq!(room_name(" General ").as_deref(), Ok("general"));
        assert_eq!(
            room_name("a b").map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            room_name("").map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            room_name(&"x".repeat(33)).map_err(|e| e.code),
            Err(ErrorCode::TooLong)
        );
    }

    #[test]
    fn nicks_are_trimmed_and_limited() {
        assert_eq!(nick("  Ann ").as_deref(), Ok("Ann"));
        assert_eq!(
            nick("a\u{7}b").map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            nick(&"é".repeat(33)).map_err(|e| e.code),
            Err(ErrorCode::TooLong)
        );
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
