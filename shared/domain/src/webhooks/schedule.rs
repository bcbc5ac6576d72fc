//! When deliveries are attempted again, and how long the pieces of the pipeline trust each
//! other before taking work back.
//!
//! The retry schedule lives in the database (`next_attempt_at`), not in queue delays: SQS
//! delays stop at 15 minutes and the schedule runs to 10 hours; in the table the next
//! attempt is visible to the API (`next_attempt_at`), survives a purged or lost queue, can
//! be cancelled (an endpoint disabled) or brought forward (retry now), and the same code
//! runs locally without a queue. The relay turns due rows into messages every time it
//! runs, so a retry is as late as the relay's period at most (about a second locally).

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;

/// The contract's schedule: after the first failure, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
/// and 10 h (eight attempts over about 27.6 hours), then the delivery is failed.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * MINUTE),
    Duration::from_secs(30 * MINUTE),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(5 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
];

#[derive(Debug, Clone)]
pub struct Settings {
    /// The wait before each retry, in order.
    pub retry_delays: Vec<Duration>,
    /// Each wait is stretched or shortened at random by up to this many per mille (±20 %),
    /// so that receivers coming back are not hit by every sender at the same second.
    pub jitter_permille: u64,
    /// The last retry comes no sooner than this after the delivery was created, whatever
    /// the jitter: retries go on for at least a day.
    pub min_retry_span: Duration,
    /// An endpoint whose attempts have all failed for this long is disabled.
    pub disable_after: Duration,
    /// How long a message may take from the relay to a delivery worker before the relay
    /// sends the delivery again.
    pub queue_lease: Duration,
    /// Added to the request timeout for the lease of an attempt: the time to record it.
    pub attempt_margin: Duration,
    /// After a success, a worker goes on with the endpoint's next due deliveries (in order)
    /// while it has run for less than this.
    pub chain_budget: Duration,
    /// Events published per transaction.
    pub publish_batch: u32,
    /// Endpoints given work per relay run.
    pub enqueue_batch: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry_delays: RETRY_DELAYS.to_vec(),
            jitter_permille: 200,
            min_retry_span: Duration::from_secs(24 * HOUR),
            disable_after: Duration::from_secs(72 * HOUR),
            queue_lease: Duration::from_secs(2 * MINUTE),
            attempt_margin: Duration::from_secs(20),
            chain_budget: Duration::from_secs(20),
            publish_batch: 500,
            enqueue_batch: 200,
        }
    }
}

/// When the next scheduled attempt comes, after `attempts` scheduled attempts have all
/// failed; `None` when the schedule is spent and the delivery is failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// From now.
    pub delay: Duration,
    /// Not before this long after the delivery was created.
    pub floor: Duration,
}

impl Settings {
    /// `random` is any uniformly random number (it picks the jitter).
    pub fn retry_after(&self, attempts: u32, random: u64) -> Option<Retry> {
        let index = attempts.max(1) as usize - 1;
        let base = *self.retry_delays.get(index)?;
        let spread = 2 * self.jitter_permille + 1;
        let factor = 1000 - self.jitter_permille + random % spread;
        let delay = Duration::from_micros(
            (base.as_micros() * u128::from(factor) / 1000).min(u128::from(u64::MAX)) as u64,
        );
        let last = index + 1 == self.retry_delays.len();
        let floor = if last {
            self.min_retry_span
        } else {
            Duration::ZERO
        };
        Some(Retry { delay, floor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_schedule_with_twenty_percent_jitter() {
        let settings = Settings::default();
        let expected = [5, 300, 1800, 7200, 18000, 36000, 36000];
        for (n, secs) in expected.iter().enumerate() {
            let attempts = n as u32 + 1;
            let low = settings.retry_after(attempts, 0).unwrap().delay;
            let middle = settings.retry_after(attempts, 200).unwrap().delay;
            let high = settings.retry_after(attempts, 400).unwrap().delay;
            assert_eq!(middle, Duration::from_secs(*secs));
            assert_eq!(low, Duration::from_secs(*secs) * 8 / 10);
            assert_eq!(high, Duration::from_secs(*secs) * 12 / 10);
        }
        // Eight attempts in all, then failed.
        assert_eq!(settings.retry_after(8, 0), None);
        // Only the last retry waits for the day to be over.
        assert_eq!(settings.retry_after(6, 0).unwrap().floor, Duration::ZERO);
        assert_eq!(
            settings.retry_after(7, 0).unwrap().floor,
            Duration::from_secs(24 * HOUR)
        );
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let settings = Settings::default();
        let delays: std::collections::BTreeSet<_> = (0..401)
            .map(|r| settings.retry_after(1, r).unwrap().delay)
            .collect();
        assert_eq!(delays.len(), 401);
        assert_eq!(*delays.first().unwrap(), Duration::from_secs(4));
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(6));
    }
}
