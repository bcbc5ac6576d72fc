//! Orders: lines with prices as bought, stock taken in the order's transaction, the status
//! machine, and their SQL.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::auth::AuthUser;
use crate::db::{self, Tx};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::money::Money;
use crate::page::{Limit, Order as SortOrder, Page, into_page};
use crate::stock;
use crate::time::timestamp;
use crate::validate::{Checks, Validate, optional_whole, whole};

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
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

impl Status {
    /// English names and the French labels shop back offices use.
    fn parse(label: &str) -> Option<Status> {
        Some(match label.trim().to_lowercase().as_str() {
            "pending" | "en attente" => Status::Pending,
            "paid" | "payée" | "payee" => Status::Paid,
            "processing" | "en traitement" => Status::Processing,
            "shipped" | "expédiée" | "expediee" => Status::Shipped,
            "delivered" | "livrée" | "livree" => Status::Delivered,
            "cancelled" | "annulée" | "annulee" => Status::Cancelled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Processing => "processing",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(label: String) -> Result<Self, String> {
        Status::parse(&label).ok_or_else(|| format!("unknown order status {label:?}"))
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let label = String::deserialize(deserializer)?;
        Status::parse(&label).ok_or_else(|| {
            serde::de::Error::custom(
                "must be one of pending, paid, processing, shipped, delivered, cancelled",
            )
        })
    }
}

/// What a status change does besides writing the new status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The order already has the requested status.
    Unchanged,
    Move,
    /// Stock goes back to the shelf and completed payments are refunded.
    Cancel,
}

/// The one place that decides whether `caller` may move an order from `from` to `to`.
/// A customer may only cancel a pending order; the fulfilment steps and cancelling a paid
/// order are for admins (403 for a customer); `paid` is reached only through payments.
pub fn transition(caller: &AuthUser, from: Status, to: Status) -> ApiResult<Transition> {
    use Status::*;
    if from == to {
        return Ok(Transition::Unchanged);
    }
    let (admin_only, effect) = match (from, to) {
        (Pending, Cancelled) => (false, Transition::Cancel),
        (Paid | Processing, Cancelled) => (true, Transition::Cancel),
        (Paid, Processing) | (Processing, Shipped) | (Shipped, Delivered) => {
            (true, Transition::Move)
        }
        _ => {
            return Err(ApiError::conflict(
                "invalid-status-transition",
                format!(
                    "An order cannot go from {} to {}.",
                    from.as_str(),
                    to.as_str()
                ),
            ));
        }
    };
    if admin_only && !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "Only an admin may make this status change.",
        ));
    }
    Ok(effect)
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    /// `null` once the product has been deleted; name and price stay as bought.
    pub product_id: Option<u64>,
    pub name: String,
    pub unit_price: Money,
    pub quantity: u32,
    pub line_total: Money,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: u64,
    pub user_id: u64,
    pub status: Status,
    pub items: Vec<OrderLine>,
    pub total: Money,
    pub amount_paid: Money,
    /// When a pending order's stock hold ends; `null` once the order has left `pending`.
    #[serde(serialize_with = "crate::time::optional_timestamp")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// An order in a list or a user's history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OrderSummary {
    pub id: u64,
    // MariaDB labels ENUM columns in a way the derived decoder refuses; go through text.
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub total: Money,
    pub amount_paid: Money,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    #[serde(deserialize_with = "whole")]
    pub product_id: u64,
    #[serde(deserialize_with = "whole")]
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[serde(default, deserialize_with = "optional_whole")]
    pub user_id: Option<u64>,
    pub items: Vec<LineRequest>,
}

impl Validate for NewOrder {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        checks.check(
            (1..=MAX_LINES).contains(&self.items.len()),
            "items",
            format!("must have 1 to {MAX_LINES} lines"),
        );
        for (i, line) in self.items.iter().enumerate() {
            let field = format!("items[{i}].product_id");
            checks.check(line.product_id > 0, &field, "must be a positive integer id");
            checks.range(
                &format!("items[{i}].quantity"),
                line.quantity,
                1,
                MAX_QUANTITY,
            );
        }
        checks.check(
            self.user_id != Some(0),
            "user_id",
            "must be a positive integer id",
        );
        checks.finish()?;
        // Merged lines obey the same bound as single ones.
        let mut merged = Checks::new();
        for (product_id, quantity) in merge(&self.items) {
            merged.check(
                quantity <= MAX_QUANTITY,
                "items",
                format!("product {product_id} is ordered {quantity} times; at most {MAX_QUANTITY}"),
            );
        }
        merged.finish()
    }
}

/// The same product twice becomes one line; lines come out in product-id order, which is
/// also the order their rows are locked in.
pub fn merge(lines: &[LineRequest]) -> Vec<(u64, u32)> {
    let mut merged: BTreeMap<u64, u32> = BTreeMap::new();
    for line in lines {
        *merged.entry(line.product_id).or_default() += line.quantity;
    }
    merged.into_iter().collect()
}

/// Creates a pending order inside `tx` that holds its stock for `hold`: locks the owner
/// (so the account cannot be deleted under the new order) and then the products in id
/// order, refuses unknown products (400) and short stock (409, naming every short product),
/// takes the stock and writes the lines with name and price as of now. Returns the new
/// order's id.
pub async fn create_in(
    tx: &mut Tx<'static>,
    user_id: u64,
    lines: &[(u64, u32)],
    hold: Duration,
) -> ApiResult<u64> {
    if !stock::lock_user_shared(tx, user_id).await? {
        return Err(ApiError::validation(
            "user_id",
            "does not name an existing user",
        ));
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
        return Err(ApiError::Validation(unknown));
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
        return Err(ApiError::Conflict {
            kind: "insufficient-stock",
            detail: format!("Not enough stock for products {}.", ids.join(", ")),
            errors: short,
        });
    }

    let too_large = || ApiError::validation("items", "the order total exceeds 99999999.99");
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
            return Err(ApiError::conflict(
                "insufficient-stock",
                format!("Not enough stock for products {id}."),
            ));
        }
    }

    let order_id = sqlx::query!(
        "INSERT INTO orders (user_id, total, expires_at)
         VALUES (?, ?, CURRENT_TIMESTAMP(6) + INTERVAL ? SECOND)",
        user_id,
        total.amount(),
        hold.as_secs()
    )
    .execute(&mut **tx)
    .await?
    .last_insert_id();

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

/// An order with its lines, in two queries whatever the number of lines, and whether its
/// stock hold has run out while it is still pending.
async fn read(conn: &mut MySqlConnection, id: u64) -> ApiResult<(Order, bool)> {
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
    .ok_or(ApiError::NotFound("order"))?;
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
pub async fn get(conn: &mut MySqlConnection, id: u64) -> ApiResult<Order> {
    read(conn, id).await.map(|(order, _)| order)
}

/// An order the caller may see: another customer's order is "not found". A pending order
/// whose hold has run out is settled (cancelled by the system) first, so no response ever
/// shows it still pending.
pub async fn get_for(pool: &MySqlPool, caller: &AuthUser, id: u64) -> ApiResult<Order> {
    let (order, due) = read(&mut *pool.acquire().await?, id).await?;
    caller.require_owner_or_admin(order.user_id, "order")?;
    if !due {
        return Ok(order);
    }
    settle(pool, id).await?;
    get(&mut *pool.acquire().await?, id).await
}

/// Locks an order row for a status change or deletion (level 4 of the lock order in
/// [`crate::stock`]), checking the caller may touch it, and returns its status and whether
/// it was settled just now. A pending order whose hold has run out is cancelled by the
/// system first, exactly as a cancel would, so the caller decides on what a sweep would
/// have left.
async fn lock_for(tx: &mut Tx<'static>, caller: &AuthUser, id: u64) -> ApiResult<(Status, bool)> {
    let row = sqlx::query!(
        r#"SELECT user_id, status AS "status: Status",
                  (status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)) AS "due!: bool"
           FROM orders WHERE id = ? FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    caller.require_owner_or_admin(row.user_id, "order")?;
    if row.due {
        stock::cancel_locked(tx, &[id]).await?;
        return Ok((Status::Cancelled, true));
    }
    Ok((row.status, false))
}

/// `PUT /orders/{id}`: applies an allowed status change in one transaction. When the order
/// turns out to have expired, its settlement is kept even if the change is then refused.
pub async fn set_status(
    pool: &MySqlPool,
    caller: AuthUser,
    id: u64,
    to: Status,
) -> ApiResult<Order> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let (from, settled) = lock_for(tx, &caller, id).await?;
            let effect = match transition(&caller, from, to) {
                Ok(effect) => effect,
                // Commit the settlement, answer the refusal.
                Err(refusal) if settled => return Ok(Err(refusal)),
                Err(refusal) => return Err(refusal),
            };
            match effect {
                Transition::Unchanged => {}
                Transition::Move => write_status(tx, id, to).await?,
                Transition::Cancel => stock::cancel_locked(tx, &[id]).await?,
            }
            Ok(get(tx, id).await)
        })
    })
    .await?
}

async fn write_status(tx: &mut Tx<'static>, id: u64, status: Status) -> ApiResult<()> {
    sqlx::query!(
        "UPDATE orders SET status = ?, updated_at = CURRENT_TIMESTAMP(6) WHERE id = ?",
        status,
        id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `DELETE /orders/{id}`: a pending order without money on it (its stock returns) or a
/// cancelled one. A pending order with completed payments must be cancelled first, which
/// refunds them: deleting it would destroy the record of money taken.
pub async fn delete(pool: &MySqlPool, caller: AuthUser, id: u64) -> ApiResult<()> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            match lock_for(tx, &caller, id).await?.0 {
                Status::Pending => {
                    if has_completed_payments(tx, id).await? {
                        return Err(ApiError::conflict(
                            "order-has-payments",
                            "This order has completed payments; cancel it first, which refunds them.",
                        ));
                    }
                    let held = stock::held_by(tx, &[id]).await?;
                    stock::put_back(tx, &held).await?;
                }
                Status::Cancelled => {}
                other => {
                    return Err(ApiError::conflict(
                        "order-not-deletable",
                        format!(
                            "A {} order cannot be deleted; only pending or cancelled ones.",
                            other.as_str()
                        ),
                    ));
                }
            }
            sqlx::query!("DELETE FROM orders WHERE id = ?", id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
    })
    .await
}

async fn has_completed_payments(tx: &mut Tx<'static>, order_id: u64) -> ApiResult<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM payments WHERE order_id = ? AND status = 'completed') AS "found!: bool""#,
        order_id
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(found)
}

/// Cancels the order if it is pending and its hold has run out (a system cancel: stock
/// back, completed payments refunded). Returns whether it did. Safe to call at any time,
/// from any number of places at once: the decision is taken on the locked row.
pub async fn settle(pool: &MySqlPool, id: u64) -> ApiResult<bool> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let due = sqlx::query_scalar!(
                "SELECT id FROM orders
                 WHERE id = ? AND status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)
                 FOR UPDATE",
                id
            )
            .fetch_optional(&mut **tx)
            .await?;
            if due.is_none() {
                return Ok(false);
            }
            stock::cancel_locked(tx, &[id]).await?;
            Ok(true)
        })
    })
    .await
}

/// Settles every order of a user whose hold has run out, before their orders are listed.
/// Usually finds none, with one look at the (user, status) index.
pub async fn settle_due_of_user(pool: &MySqlPool, user_id: u64) -> ApiResult<()> {
    let due = sqlx::query_scalar!(
        "SELECT id FROM orders
         WHERE user_id = ? AND status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)",
        user_id
    )
    .fetch_all(pool)
    .await?;
    for id in due {
        settle(pool, id).await?;
    }
    Ok(())
}

/// Cancels up to `batch` pending orders whose hold has run out, in one transaction: the
/// scheduled sweep's unit of work. Orders another transaction holds are skipped (`SKIP
/// LOCKED`), so overlapping sweeps share the work instead of queueing, and the row lock
/// makes each order's cancel happen once. Returns how many it cancelled.
pub async fn expire_due(pool: &MySqlPool, batch: u32) -> ApiResult<u64> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let ids = sqlx::query_scalar!(
                "SELECT id FROM orders
                 WHERE status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)
                 ORDER BY expires_at, id LIMIT ?
                 FOR UPDATE SKIP LOCKED",
                batch
            )
            .fetch_all(&mut **tx)
            .await?;
            stock::cancel_locked(tx, &ids).await?;
            Ok(ids.len() as u64)
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: Status,
}

impl Validate for StatusChange {}

#[derive(Debug, Default, Deserialize)]
pub struct OrderQuery {
    pub status: Option<Status>,
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for OrderQuery {}

const LIST_SORT: &str = "-created_at";
const LIST_ORDER: SortOrder = SortOrder {
    column: "o.created_at",
    id_column: "o.id",
    descending: true,
};

/// A user's orders, newest first, keyset-paged; expired holds settled first.
pub async fn list_for_user(
    pool: &MySqlPool,
    user_id: u64,
    query: &OrderQuery,
) -> ApiResult<Page<OrderSummary>> {
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
) -> ApiResult<Vec<OrderSummary>> {
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

/// Routes under `/users/{id}`: a user that does not exist is 404 (only admins get here
/// for other users).
pub async fn require_existing_user(pool: &MySqlPool, user_id: u64) -> ApiResult<()> {
    if user_exists(pool, user_id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound("user"))
    }
}

/// A body's `user_id` must name a user: an unknown one is invalid input (400).
pub async fn require_user(pool: &MySqlPool, user_id: u64) -> ApiResult<()> {
    if user_exists(pool, user_id).await? {
        Ok(())
    } else {
        Err(ApiError::validation(
            "user_id",
            "does not name an existing user",
        ))
    }
}

async fn user_exists(pool: &MySqlPool, user_id: u64) -> ApiResult<bool> {
    let found = sqlx::query_scalar!("SELECT id FROM users WHERE id = ?", user_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}
