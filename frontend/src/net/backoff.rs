//! Reconnect delays: exponential with full jitter, capped.

/// First retry waits up to this long.
pub const BASE_MS: f64 = 250.0;
/// No retry waits longer than this.
pub const CAP_MS: f64 = 5_000.0;

/// The delay before retry number `attempt` (1-based), given a random number
/// in `[0, 1)`. Half of the exponential step is fixed and half is jitter, so
/// clients that lost the same server do not all come back at once, yet none
/// retries instantly in a loop.
pub fn delay_ms(attempt: u32, random: f64) -> u32 {
    let exp = BASE_MS * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let step = exp.min(CAP_MS);
    let jitter = random.clamp(0.0, 1.0);
    (step / 2.0 + step / 2.0 * jitter).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_jitters() {
        assert_eq!(delay_ms(1, 0.0), 125);
        assert_eq!(delay_ms(1, 1.0), 250);
        assert_eq!(delay_ms(3, 1.0), 1_000);
        assert_eq!(delay_ms(10, 1.0), 5_000);
        assert_eq!(delay_ms(10, 0.0), 2_500);
        assert_eq!(delay_ms(u32::MAX, 0.5), 3_750);
    }
}
