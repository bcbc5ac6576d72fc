//! Events: what happened in the shop, for other systems to learn without polling.
//!
//! An event is written by [`record`] in the transaction of the change it describes (a
//! transactional outbox): a rollback leaves no event, a commit always has one.
//!
//! Numbering. AUTO_INCREMENT values are taken at insert, not at commit: numbering events by
//! them would let a reader that has seen event 8 miss event 7, committed a moment later.
//! So an event gets its public `id` only when it is published ([`publish_in`]): one
//! publisher at a time (the counter row's lock) numbers the committed, unpublished events
//! in the order they were written, and the feed and webhooks show published events only.
//! An event's transaction is either wholly visible to the publisher or not at all, so
//! events of one transaction keep their order; a reader following `after` never misses an
//! event, because no smaller id can appear once a larger one is visible.
//!
//! Callers record an event after making the change, while holding its locks: two changes
//! of one resource then commit, and are numbered, in the order they happened.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::error::{Error, Result};
use crate::page::{Cursor, Limit, Page, into_page};
use crate::time::timestamp;
use crate::validate::Validate;
use platform::db::Tx;

/// How long events are kept after they happened: the contract promises at least 30 days.
pub const RETENTION_DAYS: u32 = 30;

/// What happened. `product.out_of_stock` / `product.back_in_stock`: a variant's stock
/// reaching 0 or leaving 0 (`data` is the product plus `"variant_id"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "order.shipped")]
    OrderShipped,
    #[serde(rename = "order.delivered")]
    OrderDelivered,
    #[serde(rename = "payment.created")]
    PaymentCreated,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
    #[serde(rename = "product.out_of_stock")]
    ProductOutOfStock,
    #[serde(rename = "product.back_in_stock")]
    ProductBackInStock,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::OrderCreated,
        EventType::OrderPaid,
        EventType::OrderCancelled,
        EventType::OrderShipped,
        EventType::OrderDelivered,
        EventType::PaymentCreated,
        EventType::PaymentRefunded,
        EventType::ProductOutOfStock,
        EventType::ProductBackInStock,
    ];

    /// The dotted name, as stored and shown: `order.paid`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => "order.created",
            EventType::OrderPaid => "order.paid",
            EventType::OrderCancelled => "order.cancelled",
            EventType::OrderShipped => "order.shipped",
            EventType::OrderDelivered => "order.delivered",
            EventType::PaymentCreated => "payment.created",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::ProductOutOfStock => "product.out_of_stock",
            EventType::ProductBackInStock => "product.back_in_stock",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Records that `kind` happened, with `data` as the API would show the resource now, in
/// the caller's transaction: the only way anything emits an event.
pub async fn record(tx: &mut Tx<'static>, kind: EventType, data: &impl Serialize) -> Result<()> {
    let data = serde_json::to_string(data).map_err(Error::internal)?;
    // An order's events are found again by its id when its customer's account goes.
    let order_id = match kind.as_str().starts_with("order.") {
        true => serde_json::from_str::<Subject>(&data)
            .ok()
            .and_then(|s| s.id),
        false => None,
    };
    sqlx::query!(
        "INSERT INTO events (type, data, order_id, created_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))",
        kind.as_str(),
        data,
        order_id
    )
    .execute(&mut **tx)
    .await?;
    WRITTEN.store(true, Ordering::Relaxed);
    Ok(())
}

/// Whether this process has recorded events since the last call (a rolled-back one too:
/// it only costs the relay an empty run). What wakes the relay.
static WRITTEN: AtomicBool = AtomicBool::new(false);

pub fn take_written() -> bool {
    WRITTEN.swap(false, Ordering::Relaxed)
}

#[derive(Deserialize)]
struct Subject {
    id: Option<u64>,
}

/// Takes the owner and the shipping address out of the events that copied the orders `ids`,
/// as the orders themselves lose them when their customer's account is deleted. Webhooks
/// already sent cannot be called back; the feed and every later attempt show the orders
/// as they are kept.
pub(crate) async fn forget_owner(tx: &mut Tx<'static>, ids: &[u64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(
        "UPDATE events SET data = JSON_SET(data, '$.user_id', NULL, '$.shipping_address', NULL) \
         WHERE order_id IN (",
    );
    crate::sql::push_ids(&mut qb, ids);
    qb.build().execute(&mut **tx).await?;
    Ok(())
}

/// A published event, as the feed shows it and webhooks send it.
#[derive(Debug, Serialize)]
pub struct Event {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    pub data: Box<RawValue>,
}

impl Event {
    fn from_row(
        id: Option<u64>,
        kind: String,
        created_at: DateTime<Utc>,
        data: String,
    ) -> Result<Event> {
        Ok(Event {
            id: id.ok_or_else(|| Error::internal("an unpublished event was read as published"))?,
            kind,
            created_at,
            data: RawValue::from_string(data).map_err(Error::internal)?,
        })
    }
}

/// `GET /events`: `after` an id (0 or absent: from the oldest kept), one `type`, `limit`;
/// `cursor` continues a previous page the same way `after` does.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    pub after: Option<u64>,
    #[serde(rename = "type")]
    pub kind: Option<EventType>,
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for EventQuery {}

const SORT: &str = "events";

/// The feed: published events after `after`, oldest first (by id, through an index).
pub async fn list(pool: &MySqlPool, query: &EventQuery) -> Result<Page<Event>> {
    let mut after = query.after.unwrap_or(0);
    if let Some(text) = &query.cursor {
        after = after.max(Cursor::decode(SORT, text)?.id);
    }
    let fetch = query.limit.get() + 1;
    let rows = match query.kind {
        None => sqlx::query!(
            r#"SELECT id, type AS kind, created_at AS "created_at: DateTime<Utc>", data
               FROM events WHERE id > ? ORDER BY id LIMIT ?"#,
            after,
            fetch
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| Event::from_row(r.id, r.kind, r.created_at, r.data))
        .collect::<Result<Vec<_>>>()?,
        Some(kind) => sqlx::query!(
            r#"SELECT id, type AS kind, created_at AS "created_at: DateTime<Utc>", data
               FROM events WHERE type = ? AND id > ? ORDER BY id LIMIT ?"#,
            kind.as_str(),
            after,
            fetch
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| Event::from_row(r.id, r.kind, r.created_at, r.data))
        .collect::<Result<Vec<_>>>()?,
    };
    Ok(into_page(rows, query.limit, SORT, |e| {
        (String::new(), e.id)
    }))
}

/// The published event written as `seq`, as a webhook sends it.
pub(crate) async fn by_seq(conn: &mut sqlx::MySqlConnection, seq: u64) -> Result<Event> {
    let row = sqlx::query!(
        r#"SELECT id, type AS kind, created_at AS "created_at: DateTime<Utc>", data
           FROM events WHERE seq = ?"#,
        seq
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("event"))?;
    Event::from_row(row.id, row.kind, row.created_at, row.data)
}

/// An event just given its public id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    pub id: u64,
}

/// Publishes up to `batch` committed events, in the order they were written, and returns
/// them. Runs in the caller's transaction, which must not have read anything before: the
/// counter's lock, taken first, makes publishers take turns, and the plain read that
/// follows then sees everything committed up to that moment, and nothing uncommitted.
pub async fn publish_in(tx: &mut Tx<'static>, batch: u32) -> Result<Vec<Published>> {
    let last_id = match lock_counter(tx).await? {
        Some(last_id) => last_id,
        None => {
            // The row went (a local `make reset` empties every table): start again after
            // the largest id there is.
            sqlx::query!(
                "INSERT IGNORE INTO event_publisher (id, last_id)
                 SELECT 1, COALESCE(MAX(id), 0) FROM events"
            )
            .execute(&mut **tx)
            .await?;
            lock_counter(tx)
                .await?
                .ok_or_else(|| Error::internal("the event publisher's counter is missing"))?
        }
    };
    // A consistent (non-locking) read: rows of transactions still running are invisible,
    // so they are never numbered before they commit; they wait for a later turn.
    let seqs = sqlx::query_scalar!(
        "SELECT seq FROM events WHERE id IS NULL ORDER BY seq LIMIT ?",
        batch
    )
    .fetch_all(&mut **tx)
    .await?;
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let published: Vec<Published> = seqs
        .iter()
        .zip(last_id + 1..)
        .map(|(&seq, id)| Published { seq, id })
        .collect();
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new("UPDATE events SET id = CASE seq");
    for p in &published {
        qb.push(" WHEN ")
            .push_bind(p.seq)
            .push(" THEN ")
            .push_bind(p.id);
    }
    qb.push(" END, published_at = UTC_TIMESTAMP(6) WHERE id IS NULL AND seq IN (");
    let mut list = qb.separated(", ");
    for p in &published {
        list.push_bind(p.seq);
    }
    qb.push(")");
    let updated = qb.build().execute(&mut **tx).await?.rows_affected();
    if updated != published.len() as u64 {
        // Only a second publisher could have numbered them, which the lock rules out; the
        // rollback keeps the ids gap-free.
        return Err(Error::internal(format!(
            "published {updated} of {} events",
            published.len()
        )));
    }
    let new_last = published.last().map(|p| p.id).unwrap_or(last_id);
    sqlx::query!(
        "UPDATE event_publisher SET last_id = ? WHERE id = 1",
        new_last
    )
    .execute(&mut **tx)
    .await?;
    Ok(published)
}

async fn lock_counter(tx: &mut Tx<'static>) -> Result<Option<u64>> {
    let last_id =
        sqlx::query_scalar!("SELECT last_id FROM event_publisher WHERE id = 1 FOR UPDATE")
            .fetch_optional(&mut **tx)
            .await?;
    Ok(last_id)
}

/// Deletes up to `batch` published events older than [`RETENTION_DAYS`] whose deliveries
/// are gone (the sweep purges those first); returns how many. An event never published
/// (no relay ran for a month) is kept until it is.
pub async fn purge(pool: &MySqlPool, batch: u32) -> Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM events
         WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL ? DAY AND id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = events.seq)
         ORDER BY created_at LIMIT ?",
        RETENTION_DAYS,
        batch
    )
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_by_their_dotted_names() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), kind);
        }
        assert_eq!(EventType::parse("order.updated"), None);
        assert!(serde_json::from_str::<EventType>("\"order\"").is_err());
    }
}
