//! Reading one order back, with its lines.

use chrono::{DateTime, Utc};
use sqlx::MySqlConnection;

use super::history;
use super::model::{Order, OrderLine};
use super::status::Status;
use crate::addresses::PostalAddress;
use crate::discounts::{Applied, Kind, Value};
use crate::error::{Error, Result};
use crate::money::Money;
use crate::variants::{Options, Sku};

/// An order with its lines and history, in three queries whatever their number, and
/// whether its stock hold has run out while it is still pending.
pub(super) async fn read(conn: &mut MySqlConnection, id: u64) -> Result<(Order, bool)> {
    let head = sqlx::query!(
        r#"SELECT id, user_id, status AS "status: Status", subtotal, total, amount_paid,
                  discount_code, discount_kind AS "discount_kind: Kind", discount_value,
                  discount_amount,
                  expires_at AS "expires_at: DateTime<Utc>",
                  (status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)) AS "due!: bool",
                  ship_name, ship_line1, ship_line2, ship_postal_code, ship_city, ship_country,
                  ship_phone, tracking_number,
                  created_at AS "created_at: DateTime<Utc>", updated_at AS "updated_at: DateTime<Utc>"
           FROM orders WHERE id = ?"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("order"))?;
    let items = sqlx::query!(
        "SELECT product_id, variant_id, product_name, sku, options, unit_price, quantity, line_total
         FROM order_items WHERE order_id = ? ORDER BY id",
        id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|line| OrderLine {
        product_id: line.product_id,
        variant_id: line.variant_id,
        name: line.product_name,
        sku: line.sku.map(Sku::from_db),
        options: Options::from_db(&line.options),
        unit_price: Money::from_db(line.unit_price),
        quantity: line.quantity,
        line_total: Money::from_db(line.line_total),
    })
    .collect();
    // Written together, so the name stands for the whole address.
    let shipping_address = head.ship_name.map(|name| PostalAddress {
        name,
        line1: head.ship_line1.unwrap_or_default(),
        line2: head.ship_line2,
        postal_code: head.ship_postal_code.unwrap_or_default(),
        city: head.ship_city.unwrap_or_default(),
        country: head.ship_country.unwrap_or_default(),
        phone: head.ship_phone,
    });
    let history = history::of(&mut *conn, id).await?;
    // Written together, so the code stands for the whole copy.
    let discount = match (head.discount_code, head.discount_kind) {
        (Some(code), Some(kind)) => Some(Applied {
            code,
            kind,
            value: Value {
                kind,
                amount: head.discount_value.unwrap_or_default(),
            },
            amount: Money::from_db(head.discount_amount.unwrap_or_default()),
        }),
        _ => None,
    };
    let order = Order {
        id: head.id,
        user_id: head.user_id,
        status: head.status,
        items,
        subtotal: Money::from_db(head.subtotal),
        discount,
        total: Money::from_db(head.total),
        amount_paid: Money::from_db(head.amount_paid),
        expires_at: (head.status == Status::Pending).then_some(head.expires_at),
        shipping_address,
        tracking_number: head.tracking_number,
        history,
        created_at: head.created_at,
        updated_at: head.updated_at,
    };
    Ok((order, head.due))
}

/// An order as it stands in `conn`, for the transaction that has just written it.
pub async fn get(conn: &mut MySqlConnection, id: u64) -> Result<Order> {
    read(conn, id).await.map(|(order, _)| order)
}
