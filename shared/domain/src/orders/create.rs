//! Placing an order: prices as of now, stock taken in the same transaction.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::{MySql, QueryBuilder};

use super::history::{self, Actor};
use super::load::get;
use super::model::Order;
use super::status::Status;
use crate::addresses::{PostalAddress, Shipping};
use crate::error::{Conflict, Error, FieldError, Result};
use crate::money::Money;
use crate::stock;
use platform::db::Tx;

/// Creates a pending order inside `tx` that holds its stock for `hold` and ships to `ship`
/// (already resolved by the caller, so a wrong address is refused before any stock is
/// touched): locks the owner (so the account cannot be deleted under the new order) and
/// then the products in id order, refuses unknown products (400) and short stock (409,
/// naming every short product), takes the stock and writes the lines with name and price
/// as of now, and the first entry of its history. Returns the new order's id.
pub async fn create_in(
    tx: &mut Tx<'static>,
    user_id: u64,
    lines: &[(u64, u32)],
    ship: Option<&PostalAddress>,
    actor: Actor,
    hold: Duration,
) -> Result<u64> {
    if !stock::lock_user_shared(tx, user_id).await? {
        return Err(Error::invalid("user_id", "does not name an existing user"));
    }
    let mut qb: QueryBuilder<MySql> =
        QueryBuilder::new("SELECT id, name, price, stock FROM products WHERE id IN (");
    let mut ids = qb.separated(", ");
    for (product_id, _) in lines {
        ids.push_bind(*product_id);
    }
    qb.push(") ORDER BY id FOR UPDATE");
    let products: Vec<(u64, String, Decimal, u32)> =
        qb.build_query_as().fetch_all(&mut **tx).await?;
    let found: BTreeMap<u64, (String, Money, u32)> = products
        .into_iter()
        .map(|(id, name, price, stock)| (id, (name, Money::from_db(price), stock)))
        .collect();

    let unknown: Vec<FieldError> = lines
        .iter()
        .filter(|(id, _)| !found.contains_key(id))
        .map(|(id, _)| FieldError::new("items", format!("product {id} does not exist")))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Invalid(unknown));
    }
    let short: Vec<FieldError> = lines
        .iter()
        .filter(|(id, quantity)| found[id].2 < *quantity)
        .map(|(id, quantity)| {
            FieldError::new(
                "items",
                format!(
                    "product {id} has {} in stock, {quantity} requested",
                    found[id].2
                ),
            )
        })
        .collect();
    if !short.is_empty() {
        let ids: Vec<String> = lines
            .iter()
            .filter(|(id, quantity)| found[id].2 < *quantity)
            .map(|(id, _)| id.to_string())
            .collect();
        return Err(Error::Conflict {
            kind: Conflict::InsufficientStock,
            detail: format!("Not enough stock for products {}.", ids.join(", ")),
            errors: short,
        });
    }

    let too_large = || Error::invalid("items", "the order total exceeds 99999999.99");
    let mut total = Money::ZERO;
    let mut priced = Vec::with_capacity(lines.len());
    for (id, quantity) in lines {
        let (name, price, _) = &found[id];
        let line_total = price.checked_mul(*quantity).ok_or_else(too_large)?;
        total = total.checked_add(line_total).ok_or_else(too_large)?;
        priced.push((*id, name.clone(), *price, *quantity, line_total));
    }

    for (id, quantity) in lines {
        // The rows are locked; the guard makes overselling impossible even if they were not.
        let taken = sqlx::query!(
            "UPDATE products SET stock = stock - ?, updated_at = CURRENT_TIMESTAMP(6)
             WHERE id = ? AND stock >= ?",
            quantity,
            id,
            quantity
        )
        .execute(&mut **tx)
        .await?;
        if taken.rows_affected() != 1 {
            return Err(Error::conflict(
                Conflict::InsufficientStock,
                format!("Not enough stock for products {id}."),
            ));
        }
    }

    let order_id = sqlx::query!(
        "INSERT INTO orders (user_id, total, expires_at, ship_name, ship_line1, ship_line2,
                             ship_postal_code, ship_city, ship_country, ship_phone)
         VALUES (?, ?, CURRENT_TIMESTAMP(6) + INTERVAL ? SECOND, ?, ?, ?, ?, ?, ?, ?)",
        user_id,
        total.amount(),
        hold.as_secs(),
        ship.map(|a| &a.name),
        ship.map(|a| &a.line1),
        ship.and_then(|a| a.line2.as_ref()),
        ship.map(|a| &a.postal_code),
        ship.map(|a| &a.city),
        ship.map(|a| &a.country),
        ship.and_then(|a| a.phone.as_ref())
    )
    .execute(&mut **tx)
    .await?
    .last_insert_id();
    history::record(tx, &[order_id], Status::Pending, actor).await?;

    let mut insert: QueryBuilder<MySql> = QueryBuilder::new(
        "INSERT INTO order_items (order_id, product_id, product_name, unit_price, quantity, line_total) ",
    );
    insert.push_values(
        priced,
        |mut row, (id, name, price, quantity, line_total)| {
            row.push_bind(order_id)
                .push_bind(id)
                .push_bind(name)
                .push_bind(price.amount())
                .push_bind(quantity)
                .push_bind(line_total.amount());
        },
    );
    insert.build().execute(&mut **tx).await?;
    Ok(order_id)
}

/// Places an order in `tx` and reads it back: what `POST /orders` answers.
pub async fn place(
    tx: &mut Tx<'static>,
    user_id: u64,
    lines: &[(u64, u32)],
    shipping: &Shipping,
    actor: Actor,
    hold: Duration,
) -> Result<Order> {
    let ship = shipping.resolve(tx, user_id).await?;
    let id = create_in(tx, user_id, lines, ship.as_ref(), actor, hold).await?;
    get(tx, id).await
}
