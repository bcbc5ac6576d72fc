//! The scheduled sweep: settles pending orders whose stock hold has run out, and deletes
//! what the API no longer needs (idempotency records past 24 hours, login-throttle rows,
//! per email and address and per address, whose window has passed, and events, webhook
//! deliveries and their attempts past their retention), so that no table grows without
//! bound.
//!
//! Every step works in bounded batches, each its own short transaction, so a sweep never
//! holds many locks at once and an interrupted one loses nothing: the next picks up where
//! it stopped. Two sweeps running at once share the work (see [`crate::orders::expire_due`]).

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::MySqlPool;

use crate::error::Result;
use crate::users::THROTTLE_WINDOW_SECS;

/// Orders cancelled per transaction: small enough to keep each transaction short.
pub const ORDER_BATCH: u32 = 200;
/// Rows deleted per statement.
pub const DELETE_BATCH: u32 = 1000;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Report {
    pub expired_orders: u64,
    pub idempotency_keys_deleted: u64,
    /// Rows of the per-(email, address) throttle.
    pub throttle_rows_deleted: u64,
    /// Rows of the per-address throttle.
    pub address_throttle_rows_deleted: u64,
    pub webhook_attempts_deleted: u64,
    pub webhook_deliveries_deleted: u64,
    pub events_deleted: u64,
    /// The time budget ran out before everything was done; the next sweep continues.
    pub incomplete: bool,
}

/// Runs every step until there is nothing left to do or `budget` is spent.
pub async fn sweep(pool: &MySqlPool, budget: Duration) -> Result<Report> {
    let deadline = Instant::now() + budget;
    let mut report = Report::default();
    // Stock first: it is what customers are waiting for.
    let (expired, done) = batches(deadline, ORDER_BATCH, || {
        crate::orders::expire_due(pool, ORDER_BATCH)
    })
    .await?;
    report.expired_orders = expired;
    if !done {
        report.incomplete = true;
        return Ok(report);
    }
    let (deleted, done) = batches(deadline, DELETE_BATCH, || {
        crate::idempotency::purge(pool, DELETE_BATCH)
    })
    .await?;
    report.idempotency_keys_deleted = deleted;
    if !done {
        report.incomplete = true;
        return Ok(report);
    }
    let (deleted, done) = batches(deadline, DELETE_BATCH, || async {
        let deleted = sqlx::query!(
            "DELETE FROM login_throttle
             WHERE window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND
             ORDER BY window_started_at LIMIT ?",
            THROTTLE_WINDOW_SECS,
            DELETE_BATCH
        )
        .execute(pool)
        .await?;
        Ok(deleted.rows_affected())
    })
    .await?;
    report.throttle_rows_deleted = deleted;
    if !done {
        report.incomplete = true;
        return Ok(report);
    }
    let (deleted, done) = batches(deadline, DELETE_BATCH, || async {
        let deleted = sqlx::query!(
            "DELETE FROM login_address_throttle
             WHERE window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND
             ORDER BY window_started_at LIMIT ?",
            THROTTLE_WINDOW_SECS,
            DELETE_BATCH
        )
        .execute(pool)
        .await?;
        Ok(deleted.rows_affected())
    })
    .await?;
    report.address_throttle_rows_deleted = deleted;
    if !done {
        report.incomplete = true;
        return Ok(report);
    }
    // Attempts, then the deliveries they belong to, then the events those named: an event
    // is kept while a delivery of it is (its webhook can still be retried).
    let (deleted, done) = batches(deadline, DELETE_BATCH, || {
        crate::webhooks::deliveries::purge_attempts(pool, DELETE_BATCH)
    })
    .await?;
    report.webhook_attempts_deleted = deleted;
    if !done {
        report.incomplete = true;
        return Ok(report);
    }
    let (deleted, done) = batches(deadline, DELETE_BATCH, || {
        crate::webhooks::deliveries::purge(pool, DELETE_BATCH)
    })
    .await?;
    report.webhook_deliveries_deleted = deleted;
    if !done {
        report.incomplete = true;
        return Ok(report);
    }
    let (deleted, done) = batches(deadline, DELETE_BATCH, || {
        crate::events::purge(pool, DELETE_BATCH)
    })
    .await?;
    report.events_deleted = deleted;
    report.incomplete = !done;
    Ok(report)
}

/// Runs `step` (one batch of at most `batch` rows) until a batch comes back short, which
/// means nothing is left, or the deadline passes. Returns the rows done and whether it
/// finished.
async fn batches<F, Fut>(deadline: Instant, batch: u32, mut step: F) -> Result<(u64, bool)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    let mut total = 0;
    loop {
        let done = step().await?;
        total += done;
        if done < u64::from(batch) {
            return Ok((total, true));
        }
        if Instant::now() >= deadline {
            return Ok((total, false));
        }
    }
}

/// How long until the earliest pending order's stock hold runs out (zero when one already
/// has), or `None` when no order is pending: what tells the scheduled sweep when it next
/// has work.
pub async fn next_expiry(pool: &MySqlPool) -> Result<Option<Duration>> {
    let micros = sqlx::query_scalar!(
        r#"SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), MIN(expires_at)) AS "micros?: i64"
           FROM orders WHERE status = 'pending'"#
    )
    .fetch_one(pool)
    .await?;
    Ok(micros.map(|m| Duration::from_micros(u64::try_from(m).unwrap_or(0))))
}
