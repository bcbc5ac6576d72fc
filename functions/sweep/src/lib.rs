//! The `sweep` function: run every minute by a schedule (EventBridge on AWS, a timer under
//! `make run`). It settles pending orders whose stock hold has run out and deletes stale
//! idempotency and login-throttle records (per email and address, and per address); see
//! `domain::housekeeping`.
//!
//! Any event starts a sweep: the schedule's payload carries nothing the sweep needs.

use std::time::Duration;

use domain::housekeeping::{self, Report};
use lambda_runtime::LambdaEvent;
use platform::deadline::budget;
use serde_json::Value;
use sqlx::MySqlPool;

pub use lambda_runtime::Error;

/// Kept back from the invocation's deadline so the report is returned before Lambda stops
/// the instance.
const RESERVE: Duration = Duration::from_secs(5);
/// For a deadline that has already passed, which only an emulator sends.
const EMULATOR_BUDGET: Duration = Duration::from_secs(50);

/// Runs one sweep within the invocation's time.
pub async fn handle(pool: &MySqlPool, event: LambdaEvent<Value>) -> Result<Report, Error> {
    let budget = budget(event.context.deadline, RESERVE, EMULATOR_BUDGET);
    let report = housekeeping::sweep(pool, budget)
        .await
        .map_err(|e| format!("sweep failed: {e}"))?;
    tracing::info!(
        expired_orders = report.expired_orders,
        idempotency_keys_deleted = report.idempotency_keys_deleted,
        throttle_rows_deleted = report.throttle_rows_deleted,
        address_throttle_rows_deleted = report.address_throttle_rows_deleted,
        incomplete = report.incomplete,
        "sweep done"
    );
    Ok(report)
}
