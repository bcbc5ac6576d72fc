//! What an admin sees of deliveries: one per event and endpoint, with every attempt, and
//! "retry now". Old ones are purged by the sweep.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::error::{Error, Result};
use crate::events::RETENTION_DAYS;
use crate::page::{Cursor, Limit, Page, into_page};
use crate::time::{optional_timestamp, timestamp};
use crate::validate::Validate;

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: u64,
    pub event_id: u64,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: Vec<Attempt>,
    /// While pending: when the next attempt is due.
    #[serde(serialize_with = "optional_timestamp")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    #[serde(serialize_with = "timestamp")]
    pub at: DateTime<Utc>,
    /// The receiver's answer, or `null` when there was none (refused, unreachable, timed out).
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u32,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeliveryQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for DeliveryQuery {}

const SORT: &str = "-id";

/// An endpoint's deliveries, newest first, each with its attempts (oldest first).
pub async fn list(
    pool: &MySqlPool,
    endpoint_id: u64,
    query: &DeliveryQuery,
) -> Result<Page<Delivery>> {
    let exists = sqlx::query_scalar!("SELECT id FROM webhook_endpoints WHERE id = ?", endpoint_id)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Err(Error::NotFound("webhook endpoint"));
    }
    let before = match &query.cursor {
        Some(text) => Cursor::decode(SORT, text)?.id,
        None => u64::MAX,
    };
    let rows = sqlx::query!(
        r#"SELECT d.id, e.id AS event_id, e.type AS event_type, d.status,
                  d.next_attempt_at AS "next_attempt_at: DateTime<Utc>"
           FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq
           WHERE d.endpoint_id = ? AND d.id < ? ORDER BY d.id DESC LIMIT ?"#,
        endpoint_id,
        before,
        query.limit.get() + 1
    )
    .fetch_all(pool)
    .await?;
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in rows {
        deliveries.push(Delivery {
            id: row.id,
            event_id: row
                .event_id
                .ok_or_else(|| Error::internal("a delivery of an unpublished event"))?,
            event_type: row.event_type,
            next_attempt_at: row.next_attempt_at.filter(|_| row.status == "pending"),
            status: row.status,
            attempts: Vec::new(),
        });
    }
    let mut page = into_page(deliveries, query.limit, SORT, |d| (String::new(), d.id));
    attach_attempts(pool, &mut page.items).await?;
    Ok(page)
}

/// One delivery of an endpoint, with its attempts.
pub async fn get(pool: &MySqlPool, endpoint_id: u64, id: u64) -> Result<Delivery> {
    let row = sqlx::query!(
        r#"SELECT d.id, e.id AS event_id, e.type AS event_type, d.status,
                  d.next_attempt_at AS "next_attempt_at: DateTime<Utc>"
           FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq
           WHERE d.endpoint_id = ? AND d.id = ?"#,
        endpoint_id,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("delivery"))?;
    let mut delivery = vec![Delivery {
        id: row.id,
        event_id: row
            .event_id
            .ok_or_else(|| Error::internal("a delivery of an unpublished event"))?,
        event_type: row.event_type,
        next_attempt_at: row.next_attempt_at.filter(|_| row.status == "pending"),
        status: row.status,
        attempts: Vec::new(),
    }];
    attach_attempts(pool, &mut delivery).await?;
    Ok(delivery.remove(0))
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: u64,
    at: DateTime<Utc>,
    status_code: Option<u16>,
    error: Option<String>,
    duration_ms: u32,
}

async fn attach_attempts(pool: &MySqlPool, deliveries: &mut [Delivery]) -> Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT delivery_id, at, status_code, error, duration_ms FROM webhook_attempts \
         WHERE delivery_id IN (",
    );
    let mut ids = qb.separated(", ");
    for d in deliveries.iter() {
        ids.push_bind(d.id);
    }
    qb.push(") ORDER BY delivery_id, id");
    let rows: Vec<AttemptRow> = qb.build_query_as().fetch_all(pool).await?;
    let mut by_delivery: HashMap<u64, Vec<Attempt>> = HashMap::new();
    for row in rows {
        by_delivery
            .entry(row.delivery_id)
            .or_default()
            .push(Attempt {
                at: row.at,
                status_code: row.status_code,
                error: row.error,
                duration_ms: row.duration_ms,
            });
    }
    for d in deliveries.iter_mut() {
        d.attempts = by_delivery.remove(&d.id).unwrap_or_default();
    }
    Ok(())
}

/// "Retry now": one more attempt as soon as a worker takes it, whatever the delivery's
/// state (a failed delivery goes back to failed if it fails again; a pending one keeps its
/// schedule). Also for an endpoint that was disabled: an admin asked for it. The relay's
/// next run sends it; call the relay right after to send it at once.
pub async fn retry(pool: &MySqlPool, endpoint_id: u64, id: u64) -> Result<Delivery> {
    let changed = sqlx::query!(
        "UPDATE webhook_deliveries
         SET status = 'pending', next_attempt_at = UTC_TIMESTAMP(6), manual = TRUE,
             updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND endpoint_id = ?",
        id,
        endpoint_id
    )
    .execute(pool)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(Error::NotFound("delivery"));
    }
    get(pool, endpoint_id, id).await
}

/// Deletes up to `batch` attempts older than the retention; returns how many.
pub async fn purge_attempts(pool: &MySqlPool, batch: u32) -> Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM webhook_attempts WHERE at < UTC_TIMESTAMP(6) - INTERVAL ? DAY
         ORDER BY at LIMIT ?",
        RETENTION_DAYS,
        batch
    )
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// Deletes up to `batch` finished deliveries older than the retention (with any attempts
/// left); returns how many. Run after [`purge_attempts`] and before
/// [`crate::events::purge`], which keeps events that still have deliveries.
pub async fn purge(pool: &MySqlPool, batch: u32) -> Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM webhook_deliveries
         WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL ? DAY AND status <> 'pending'
         ORDER BY created_at LIMIT ?",
        RETENTION_DAYS,
        batch
    )
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
