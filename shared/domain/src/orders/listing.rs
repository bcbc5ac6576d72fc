//! What callers read: one order, a user's orders, their latest orders. Expired holds are
//! settled before anything is shown.

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::lifecycle::{settle, settle_due_of_user};
use super::load::{get, read};
use super::model::{Order, OrderQuery, OrderSummary};
use super::status::Status;
use crate::caller::Caller;
use crate::error::Result;
use crate::money::Money;
use crate::page::{Keyset, Page, into_page};

/// An order the caller may see: another customer's order is "not found". A pending order
/// whose hold has run out is settled (cancelled by the system) first, so no response ever
/// shows it still pending.
pub async fn get_for(pool: &MySqlPool, caller: &Caller, id: u64) -> Result<Order> {
    let (order, due) = read(&mut *pool.acquire().await?, id).await?;
    caller.require_owner_or_admin(order.user_id, "order")?;
    if !due {
        return Ok(order);
    }
    settle(pool, id).await?;
    get(&mut *pool.acquire().await?, id).await
}

const LIST_SORT: &str = "-created_at";
const LIST_ORDER: Keyset = Keyset {
    column: "o.created_at",
    id_column: "o.id",
    descending: true,
};

/// A user's orders, newest first, keyset-paged; expired holds settled first.
pub async fn list_for_user(
    pool: &MySqlPool,
    user_id: u64,
    query: &OrderQuery,
) -> Result<Page<OrderSummary>> {
    settle_due_of_user(pool, user_id).await?;
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT o.id, o.status, o.total, o.amount_paid, o.created_at FROM orders o WHERE o.user_id = ",
    );
    qb.push_bind(user_id);
    if let Some(status) = query.status {
        qb.push(" AND o.status = ").push_bind(status);
    }
    LIST_ORDER.push_time_cursor(&mut qb, LIST_SORT, query.cursor.as_deref())?;
    LIST_ORDER.push_order_and_limit(&mut qb, query.limit);
    let rows: Vec<OrderSummary> = qb.build_query_as().fetch_all(pool).await?;
    Ok(into_page(rows, query.limit, LIST_SORT, |o| {
        (crate::time::cursor_value(o.created_at), o.id)
    }))
}

/// The newest `limit` orders of a user; expired holds settled first.
pub async fn recent_for_user(
    pool: &MySqlPool,
    user_id: u64,
    limit: u32,
) -> Result<Vec<OrderSummary>> {
    settle_due_of_user(pool, user_id).await?;
    Ok(sqlx::query_as!(
        OrderSummary,
        r#"SELECT id, status AS "status: Status", total AS "total: Money", amount_paid AS "amount_paid: Money",
                  created_at AS "created_at: DateTime<Utc>"
           FROM orders WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"#,
        user_id,
        limit
    )
    .fetch_all(pool)
    .await?)
}
