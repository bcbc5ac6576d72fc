//! Reading one order back, with its lines.

use chrono::{DateTime, Utc};
use sqlx::MySqlConnection;

use super::model::{Order, OrderLine};
use super::status::Status;
use crate::error::{Error, Result};
use crate::money::Money;

/// An order with its lines, in two queries whatever the number of lines, and whether its
/// stock hold has run out while it is still pending.
pub(super) async fn read(conn: &mut MySqlConnection, id: u64) -> Result<(Order, bool)> {
    let head = sqlx::query!(
        r#"SELECT id, user_id, status AS "status: Status", total, amount_paid,
                  expires_at AS "expires_at: DateTime<Utc>",
                  (status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)) AS "due!: bool",
                  created_at AS "created_at: DateTime<Utc>", updated_at AS "updated_at: DateTime<Utc>"
           FROM orders WHERE id = ?"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("order"))?;
    let items = sqlx::query!(
        "SELECT product_id, product_name, unit_price, quantity, line_total
         FROM order_items WHERE order_id = ? ORDER BY id",
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|line| OrderLine {
        product_id: line.product_id,
        name: line.product_name,
        unit_price: Money::from_db(line.unit_price),
        quantity: line.quantity,
        line_total: Money::from_db(line.line_total),
    })
    .collect();
    let order = Order {
        id: head.id,
        user_id: head.user_id,
        status: head.status,
        items,
        total: Money::from_db(head.total),
        amount_paid: Money::from_db(head.amount_paid),
        expires_at: (head.status == Status::Pending).then_some(head.expires_at),
        created_at: head.created_at,
        updated_at: head.updated_at,
    };
    Ok((order, head.due))
}

/// An order as it stands in `conn`, for the transaction that has just written it.
pub async fn get(conn: &mut MySqlConnection, id: u64) -> Result<Order> {
    read(conn, id).await.map(|(order, _)| order)
}
