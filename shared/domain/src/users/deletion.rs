//! Deleting an account: the person goes, the shop's money records stay.
//!
//! Everything personal is removed in one transaction: the profile and credentials, the
//! address book, the cart, the reviews (leaving the product ratings), the idempotency
//! records (their stored responses copy orders and addresses), the login-throttle rows
//! naming the email, and the name and address copied onto each order. Pending orders are
//! cancelled first, exactly as a cancel. Orders and payments stay, with no owner
//! (`user_id` NULL): a shop must keep its accounts, and admins can still read them. While
//! the shop owes the customer goods (an order paid, processing or shipped), the account
//! cannot be deleted.

use std::collections::BTreeMap;

use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::caller::Caller;
use crate::error::{Conflict, Error, Result};
use crate::orders::lifecycle::refund_and_cancel;
use crate::orders::{Actor, Status};
use crate::stock;
use platform::db::{self, Tx};

/// `DELETE /users/{id}` by `caller` (the user or an admin). The user's tokens stop
/// working because the row they name is gone, and the email is free to register again.
pub async fn delete(pool: &MySqlPool, caller: Caller, id: u64) -> Result<()> {
    db::transaction(pool, |tx| Box::pin(delete_in(tx, caller, id))).await
}

/// Follows the lock order of [`crate::stock`]: the user row, their idempotency records,
/// their cart lines, every order of theirs (so a concurrent cancel, deletion, payment or
/// expiry of one of them has either committed, and is seen, or waits until this has), then
/// the products in id order, then the payments of the orders it cancels.
async fn delete_in(tx: &mut Tx<'static>, caller: Caller, id: u64) -> Result<()> {
    // Level 1, with the email the throttle rows are keyed by.
    let email = sqlx::query_scalar!(
        r#"SELECT CAST(email AS CHAR) AS "email!: String" FROM users WHERE id = ? FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("user"))?;
    sqlx::query!("DELETE FROM idempotency_keys WHERE user_id = ?", id)
        .execute(&mut **tx)
        .await?;
    sqlx::query!("DELETE FROM cart_items WHERE user_id = ?", id)
        .execute(&mut **tx)
        .await?;

    let orders = lock_orders_of(tx, id).await?;
    if let Some(open) = orders.iter().find(|o| {
        matches!(
            o.status,
            Status::Paid | Status::Processing | Status::Shipped
        )
    }) {
        return Err(Error::conflict(
            Conflict::AccountHasOpenOrders,
            format!(
                "Order {} is {}: the shop still owes this customer goods. Deliver or cancel it first.",
                open.id,
                open.status.as_str()
            ),
        ));
    }
    // A pending order whose hold has run out is the system's to cancel, as a read would
    // have done; the others are cancelled by whoever deletes the account.
    let pending = |due: bool| -> Vec<u64> {
        orders
            .iter()
            .filter(|o| o.status == Status::Pending && o.due == due)
            .map(|o| o.id)
            .collect()
    };
    let (expired, held) = (pending(true), pending(false));
    let holding: Vec<u64> = expired.iter().chain(&held).copied().collect();
    crate::discounts::give_back(tx, &holding).await?;
    return_stock_and_ratings(tx, id, &holding).await?;
    refund_and_cancel(tx, &expired, Actor::System).await?;
    refund_and_cancel(tx, &held, Actor::of(&caller)).await?;

    let ids: Vec<u64> = orders.iter().map(|o| o.id).collect();
    anonymise(tx, &ids).await?;
    crate::events::forget_owner(tx, &ids).await?;
    sqlx::query!("DELETE FROM login_throttle WHERE email = ?", email)
        .execute(&mut **tx)
        .await?;
    // Addresses and reviews go by cascade; orders no longer name the user.
    sqlx::query!("DELETE FROM users WHERE id = ?", id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An order of the user being deleted, locked.
#[derive(sqlx::FromRow)]
struct OwnOrder {
    id: u64,
    #[sqlx(try_from = "String")]
    status: Status,
    due: bool,
}

/// Level 4: every order of the user, locked by primary key. The ids come from a plain
/// read: no order can be placed for the user while their row is locked, and a locking read
/// through the user index would lock the gaps around their orders, where other accounts'
/// orders are written (and where an anonymised order's entry moves).
async fn lock_orders_of(tx: &mut Tx<'static>, id: u64) -> Result<Vec<OwnOrder>> {
    let ids = sqlx::query_scalar!("SELECT id FROM orders WHERE user_id = ?", id)
        .fetch_all(&mut **tx)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut select: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT id, CAST(status AS CHAR) AS status, \
         (status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)) AS due \
         FROM orders WHERE id IN (",
    );
    stock::push_ids(&mut select, &ids);
    select.push(" ORDER BY id FOR UPDATE");
    Ok(select.build_query_as().fetch_all(&mut **tx).await?)
}

/// Takes the user's reviews out of the product ratings, in one pass over the products in
/// id order (level 5), then puts back the stock the orders `holding` hold (level 6).
async fn return_stock_and_ratings(tx: &mut Tx<'static>, id: u64, holding: &[u64]) -> Result<()> {
    let held = stock::held_by(tx, holding).await?;
    let ratings = crate::reviews::ratings_of_user(tx, id).await?;
    let mut products: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for (product_id, rating) in ratings {
        let entry = products.entry(product_id).or_default();
        entry.0 += 1;
        entry.1 += u32::from(rating);
    }
    for (product_id, (reviews, rating_sum)) in products {
        sqlx::query!(
            "UPDATE products SET review_count = review_count - ?, rating_sum = rating_sum - ?
             WHERE id = ?",
            reviews,
            rating_sum,
            product_id
        )
        .execute(&mut **tx)
        .await?;
    }
    stock::put_back(tx, &held).await
}

/// The locked orders `ids` lose their owner and the name and address copied onto them;
/// lines, totals, payments, history and tracking number stay as the shop's record.
async fn anonymise(tx: &mut Tx<'static>, ids: &[u64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut update: QueryBuilder<MySql> = QueryBuilder::new(
        "UPDATE orders SET user_id = NULL, ship_name = NULL, ship_line1 = NULL, \
         ship_line2 = NULL, ship_postal_code = NULL, ship_city = NULL, ship_country = NULL, \
         ship_phone = NULL, updated_at = CURRENT_TIMESTAMP(6) WHERE id IN (",
    );
    stock::push_ids(&mut update, ids);
    update.build().execute(&mut **tx).await?;
    Ok(())
}
