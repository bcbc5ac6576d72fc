//! The `sweep` function: run every minute by a schedule (EventBridge on AWS, a timer under
//! `make run`). It settles pending orders whose stock hold has run out and deletes stale
//! idempotency and login-throttle records (per email and address, and per address); see
//! `domain::housekeeping`.
//!
//! It opens a connection only when it has work. Each sweep works out when work can next be
//! due: the earliest pending order's expiry or, with no order pending, one hold from now
//! (an order placed later cannot expire sooner), less a minute for an order whose
//! transaction was still open as the sweep looked. Scheduled runs before then end without
//! touching the database, so an idle shop leaves an auto-pausing cluster alone long enough
//! to pause, and no hold is settled later than the schedule's minute after its expiry.
//! An instance that starts (or any event that is not the schedule's, such as an operator's
//! `{}`) sweeps at once.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use domain::housekeeping::{self, Report};
use lambda_runtime::LambdaEvent;
use platform::deadline::budget;
use serde::Serialize;
use serde_json::Value;
use sqlx::MySqlPool;

pub use lambda_runtime::Error;

/// Kept back from the invocation's deadline so the report is returned before Lambda stops
/// the instance.
const RESERVE: Duration = Duration::from_secs(5);
/// For a deadline that has already passed, which only an emulator sends.
const EMULATOR_BUDGET: Duration = Duration::from_secs(50);
/// Longer than any API transaction may stay open (the functions time out within 29 s): an
/// order committed after the sweep looked was created at most this long before.
const OPEN_TRANSACTION_MARGIN: Duration = Duration::from_secs(60);
/// The longest wait between two attempts to reach a database that is resuming.
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// What one invocation did, as it is logged and returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// What the sweep did; absent when it skipped.
    #[serde(flatten)]
    pub report: Option<Report>,
    /// The run was scheduled before any work could be due: the database was not touched.
    pub skipped: bool,
    /// When the next scheduled run will look at the database.
    pub next_look_in_seconds: u64,
}

/// The sweep of one function instance: how long orders hold their stock, and when the
/// next look is due.
pub struct Sweeper {
    hold: Duration,
    next_look: Mutex<Option<SystemTime>>,
}

impl Sweeper {
    /// `hold` must be the API functions' `ORDER_HOLD_SECONDS`: the template gives both the
    /// same value.
    pub fn new(hold: Duration) -> Self {
        Self {
            hold,
            next_look: Mutex::new(None),
        }
    }

    /// From `ORDER_HOLD_SECONDS`, as the API functions read it.
    pub fn from_env() -> Result<Self, Error> {
        let hold = domain::settings::order_hold(&|name| std::env::var(name).ok())?;
        Ok(Self::new(hold))
    }

    /// For a scheduled run before the next look: what to answer, without a connection.
    /// `None`: sweep now.
    pub fn skip(&self, event: &Value) -> Option<Outcome> {
        if !is_scheduled(event) {
            return None;
        }
        let next = (*self.next_look.lock().unwrap_or_else(|e| e.into_inner()))?;
        let wait = next.duration_since(SystemTime::now()).ok()?;
        Some(Outcome {
            report: None,
            skipped: true,
            next_look_in_seconds: wait.as_secs(),
        })
    }

    /// Sweeps now, within the invocation's time, and works out the next look.
    pub async fn sweep(
        &self,
        pool: &MySqlPool,
        event: LambdaEvent<Value>,
    ) -> Result<Outcome, Error> {
        let budget = budget(event.context.deadline, RESERVE, EMULATOR_BUDGET);
        let deadline = Instant::now() + budget;
        wait_for_database(pool, deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let report = housekeeping::sweep(pool, left)
            .await
            .map_err(|e| format!("sweep failed: {e}"))?;
        let wait = if report.incomplete {
            Duration::ZERO
        } else {
            let due = housekeeping::next_expiry(pool)
                .await
                .map_err(|e| format!("reading the next expiry failed: {e}"))?;
            self.wait_for(due)
        };
        *self.next_look.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now() + wait);
        let outcome = Outcome {
            report: Some(report),
            skipped: false,
            next_look_in_seconds: wait.as_secs(),
        };
        tracing::info!(
            expired_orders = report.expired_orders,
            idempotency_keys_deleted = report.idempotency_keys_deleted,
            throttle_rows_deleted = report.throttle_rows_deleted,
            address_throttle_rows_deleted = report.address_throttle_rows_deleted,
            webhook_attempts_deleted = report.webhook_attempts_deleted,
            webhook_deliveries_deleted = report.webhook_deliveries_deleted,
            events_deleted = report.events_deleted,
            incomplete = report.incomplete,
            next_look_in_seconds = outcome.next_look_in_seconds,
            "sweep done"
        );
        Ok(outcome)
    }

    /// How long no work can be due, given the earliest pending expiry.
    fn wait_for(&self, earliest_expiry: Option<Duration>) -> Duration {
        let unseen = self.hold.saturating_sub(OPEN_TRANSACTION_MARGIN);
        earliest_expiry.map_or(unseen, |due| due.min(unseen))
    }
}

/// Waits, within the run's time, while the database cannot be reached: the sweep's look
/// is what wakes an auto-paused cluster, which takes about 15 s to resume.
async fn wait_for_database(pool: &MySqlPool, deadline: Instant) -> Result<(), Error> {
    let mut pause = Duration::from_millis(500);
    loop {
        let error = match pool.acquire().await {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if !platform::db::is_unavailable(&error) || Instant::now() + pause >= deadline {
            return Err(format!("the database could not be reached: {error}").into());
        }
        tracing::info!(%error, "database not reachable yet (resuming?); trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// What EventBridge sends for a schedule (`"detail-type": "Scheduled Event"`).
fn is_scheduled(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_next_look_is_the_earliest_expiry_or_one_hold_less_the_margin() {
        let sweeper = Sweeper::new(Duration::from_secs(1800));
        assert_eq!(sweeper.wait_for(None), Duration::from_secs(1740));
        assert_eq!(
            sweeper.wait_for(Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        assert_eq!(
            sweeper.wait_for(Some(Duration::from_secs(3600))),
            Duration::from_secs(1740),
            "a longer hold than today's (a changed setting) is looked at within one hold"
        );
        let short = Sweeper::new(Duration::from_secs(30));
        assert_eq!(
            short.wait_for(None),
            Duration::ZERO,
            "holds under a minute: every run"
        );
    }

    #[test]
    fn only_the_schedule_waits_and_only_after_a_look() {
        let sweeper = Sweeper::new(Duration::from_secs(1800));
        let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
        assert_eq!(
            sweeper.skip(&scheduled),
            None,
            "a new instance looks at once"
        );
        *sweeper.next_look.lock().unwrap() = Some(SystemTime::now() + Duration::from_secs(600));
        let skipped = sweeper
            .skip(&scheduled)
            .expect("a scheduled run before the look");
        assert!(skipped.skipped && skipped.report.is_none());
        assert!((598..=600).contains(&skipped.next_look_in_seconds));
        assert_eq!(
            sweeper.skip(&json!({})),
            None,
            "an operator's invoke sweeps now"
        );
        *sweeper.next_look.lock().unwrap() = Some(SystemTime::now() - Duration::from_secs(1));
        assert_eq!(sweeper.skip(&scheduled), None, "the look is due");
    }
}
