//! How long an invocation may keep working: Lambda gives each one a deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lambda's longest timeout: no invocation has more time than this.
pub const LONGEST_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// The time left before `deadline_ms` (milliseconds since the Unix epoch, as Lambda gives
/// it), minus `reserve` for answering. A deadline already past, which only an emulator
/// sends (`cargo lambda watch` sends a fixed 600000), gets `fallback` instead; one further
/// away than Lambda allows is cut to [`LONGEST_INVOCATION`], so that adding the budget to
/// the clock cannot overflow.
pub fn budget(deadline_ms: u64, reserve: Duration, fallback: Duration) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    match Duration::from_millis(deadline_ms).checked_sub(now) {
        Some(left) => left.min(LONGEST_INVOCATION).saturating_sub(reserve),
        None => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESERVE: Duration = Duration::from_secs(20);
    const FALLBACK: Duration = Duration::from_secs(60);

    fn in_ms(from_now: Duration) -> u64 {
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + from_now;
        at.as_millis() as u64
    }

    #[test]
    fn the_budget_leaves_time_to_answer() {
        let left = budget(in_ms(Duration::from_secs(300)), RESERVE, FALLBACK);
        assert!(left <= Duration::from_secs(280) && left > Duration::from_secs(275));
        let short = budget(in_ms(Duration::from_secs(5)), RESERVE, FALLBACK);
        assert_eq!(short, Duration::ZERO);
    }

    /// A deadline no Lambda sends (the end of time) must not overflow the clock of the
    /// code that counts down to it.
    #[test]
    fn a_deadline_beyond_any_invocation_is_cut_to_the_longest() {
        let left = budget(u64::MAX, RESERVE, FALLBACK);
        assert_eq!(left, LONGEST_INVOCATION - RESERVE);
        let _ = std::time::Instant::now() + left;
    }

    #[test]
    fn a_deadline_in_the_past_gets_the_fallback() {
        assert_eq!(budget(600_000, RESERVE, FALLBACK), FALLBACK);
    }
}
