//! The scheduled sweep: settles pending orders whose stock hold has run out, and deletes
//! what the API no longer needs (idempotency records past 24 hours, login-throttle rows
//! whose window has passed), so that no table grows without bound.
//!
//! Every step works in bounded batches, each its own short transaction, so a sweep never
//! holds many locks at once and an interrupted one loses nothing: the next picks up where
//! it stopped. Two sweeps running at once share the work (see [`crate::orders::expire_due`]).

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::MySqlPool;

use crate::error::ApiResult;
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
    pub throttle_rows_deleted: u64,
    /// The time budget ran out before everything was done; the next sweep continues.
    pub incomplete: bool,
}

/// Runs every step until there is nothing left to do or `budget` is spent.
pub async fn sweep(pool: &MySqlPool, budget: Duration) -> ApiResult<Report> {
    let deadline = Instant::now() + budget;
    let mut report = Report::default();
    // Stock first: it is what customers are waiting for.
    loop {
        let expired = crate::orders::expire_due(pool, ORDER_BATCH).await?;
        report.expired_orders += expired;
        if expired < u64::from(ORDER_BATCH) {
            break;
        }
        if Instant::now() >= deadline {
            report.incomplete = true;
            return Ok(report);
        }
    }
    loop {
        let deleted = sqlx::query!(
            "DELETE FROM idempotency_keys
             WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL ? HOUR
             ORDER BY created_at LIMIT ?",
            crate::idempotency::TTL_HOURS,
            DELETE_BATCH
        )
        .execute(pool)
        .await?
        .rows_affected();
        report.idempotency_keys_deleted += deleted;
        if deleted < u64::from(DELETE_BATCH) {
            break;
        }
        if Instant::now() >= deadline {
            report.incomplete = true;
            return Ok(report);
        }
    }
    loop {
        let deleted = sqlx::query!(
            "DELETE FROM login_throttle
             WHERE window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND
             ORDER BY window_started_at LIMIT ?",
            THROTTLE_WINDOW_SECS,
            DELETE_BATCH
        )
        .execute(pool)
        .await?
        .rows_affected();
        report.throttle_rows_deleted += deleted;
        if deleted < u64::from(DELETE_BATCH) {
            break;
        }
        if Instant::now() >= deadline {
            report.incomplete = true;
            return Ok(report);
        }
    }
    Ok(report)
}
