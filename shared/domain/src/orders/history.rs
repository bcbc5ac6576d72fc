//! The timeline of an order: one entry for each status it entered, written by the
//! transaction that changed the status, so the two can never disagree.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlConnection, QueryBuilder};

use super::status::Status;
use crate::caller::Caller;
use platform::db::Tx;

/// Who moved an order: its customer, an admin, or the shop itself (an expired hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Actor {
    Customer,
    Admin,
    System,
}

impl Actor {
    /// An admin acts as an admin even on their own orders.
    pub fn of(caller: &Caller) -> Actor {
        if caller.is_admin() {
            Actor::Admin
        } else {
            Actor::Customer
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub status: Status,
    #[serde(serialize_with = "crate::time::timestamp")]
    pub at: DateTime<Utc>,
    pub actor: Actor,
}

/// Notes that the locked orders `order_ids` entered `status` now.
pub async fn record(
    tx: &mut Tx<'static>,
    order_ids: &[u64],
    status: Status,
    actor: Actor,
) -> Result<(), sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(());
    }
    let mut insert: QueryBuilder<MySql> =
        QueryBuilder::new("INSERT INTO order_status_history (order_id, status, actor) ");
    insert.push_values(order_ids, |mut row, id| {
        row.push_bind(*id).push_bind(status).push_bind(actor);
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

/// The first entry of a new order, dated as the order records its creation: `pending`, or
/// `paid` for an order with nothing to pay.
pub async fn begin(
    tx: &mut Tx<'static>,
    order_id: u64,
    status: Status,
    at: DateTime<Utc>,
    actor: Actor,
) -> Result<HistoryEntry, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO order_status_history (order_id, status, actor, entered_at) VALUES (?, ?, ?, ?)",
        order_id,
        status,
        actor,
        at
    )
    .execute(&mut **tx)
    .await?;
    Ok(HistoryEntry { status, at, actor })
}

/// An order's timeline, oldest first.
pub async fn of(
    conn: &mut MySqlConnection,
    order_id: u64,
) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    sqlx::query_as!(
        HistoryEntry,
        r#"SELECT status AS "status: Status", entered_at AS "at: DateTime<Utc>", actor AS "actor: Actor"
           FROM order_status_history WHERE order_id = ? ORDER BY id"#,
        order_id
    )
    .fetch_all(conn)
    .await
}
