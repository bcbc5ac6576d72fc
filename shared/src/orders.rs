//! Orders: lines with prices as bought, the status machine, and their SQL.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::money::Money;
use crate::time::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Paid,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

/// An order in a user's history.
#[derive(Debug, Clone, Serialize)]
pub struct OrderSummary {
    pub id: u64,
    pub status: Status,
    pub total: Money,
    pub amount_paid: Money,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

/// The newest `limit` orders of a user.
pub async fn recent_for_user(
    pool: &MySqlPool,
    user_id: u64,
    limit: u32,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, status AS "status: Status", total, amount_paid,
                  created_at AS "created_at: DateTime<Utc>"
           FROM orders WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"#,
        user_id,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OrderSummary {
            id: r.id,
            status: r.status,
            total: Money::from_db(r.total),
            amount_paid: Money::from_db(r.amount_paid),
            created_at: r.created_at,
        })
        .collect())
}
