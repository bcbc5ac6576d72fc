//! Orders: lines with prices as bought, stock taken in the order's transaction, the status
//! machine, and their SQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::auth::AuthUser;
use crate::db::{self, Tx};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::money::Money;
use crate::page::{Limit, Order as SortOrder, Page, into_page};
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

/// Creates a pending order inside `tx`: locks the products in id order, refuses unknown
/// products (400) and short stock (409, naming every short product), takes the stock and
/// writes the lines with name and price as of now. Returns the new order's id.
pub async fn create_in(tx: &mut Tx<'static>, user_id: u64, lines: &[(u64, u32)]) -> ApiResult<u64> {
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
        "INSERT INTO orders (user_id, total) VALUES (?, ?)",
        user_id,
        total.amount()
    )
    .execute(&mut **tx)
    .await
    .map_err(|err| {
        if db::is_foreign_key_violation(&err) {
            ApiError::validation("user_id", "does not name an existing user")
        } else {
            err.into()
        }
    })?
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

/// An order with its lines, in two queries whatever the number of lines.
pub async fn get(conn: &mut MySqlConnection, id: u64) -> ApiResult<Order> {
    let head = sqlx::query!(
        r#"SELECT id, user_id, status AS "status: Status", total, amount_paid,
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
    Ok(Order {
        id: head.id,
        user_id: head.user_id,
        status: head.status,
        items,
        total: Money::from_db(head.total),
        amount_paid: Money::from_db(head.amount_paid),
        created_at: head.created_at,
        updated_at: head.updated_at,
    })
}

/// An order the caller may see: another customer's order is "not found".
pub async fn get_for(pool: &MySqlPool, caller: &AuthUser, id: u64) -> ApiResult<Order> {
    let order = get(&mut *pool.acquire().await?, id).await?;
    caller.require_owner_or_admin(order.user_id, "order")?;
    Ok(order)
}

/// Locks an order row for a status change or deletion, checking the caller may touch it.
async fn lock_for(tx: &mut Tx<'static>, caller: &AuthUser, id: u64) -> ApiResult<(u64, Status)> {
    let row = sqlx::query!(
        r#"SELECT user_id, status AS "status: Status" FROM orders WHERE id = ? FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    caller.require_owner_or_admin(row.user_id, "order")?;
    Ok((row.user_id, row.status))
}

/// `PUT /orders/{id}`: applies an allowed status change in one transaction.
pub async fn set_status(
    pool: &MySqlPool,
    caller: AuthUser,
    id: u64,
    to: Status,
) -> ApiResult<Order> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let (_, from) = lock_for(tx, &caller, id).await?;
            match transition(&caller, from, to)? {
                Transition::Unchanged => {}
                Transition::Move => write_status(tx, id, to).await?,
                Transition::Cancel => cancel_in(tx, id).await?,
            }
            get(tx, id).await
        })
    })
    .await
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

/// Cancels a locked order: its stock goes back (lines of deleted products have nothing to
/// return to) and its completed payments are refunded, all in the caller's transaction.
async fn cancel_in(tx: &mut Tx<'static>, id: u64) -> ApiResult<()> {
    return_stock(tx, id).await?;
    crate::payments::refund_all_in(tx, id).await?;
    write_status(tx, id, Status::Cancelled).await
}

async fn return_stock(tx: &mut Tx<'static>, order_id: u64) -> ApiResult<()> {
    let lines = sqlx::query!(
        r#"SELECT product_id AS "product_id!: u64", CAST(SUM(quantity) AS UNSIGNED) AS "quantity!: u64"
           FROM order_items WHERE order_id = ? AND product_id IS NOT NULL
           GROUP BY product_id"#,
        order_id
    )
    .fetch_all(&mut **tx)
    .await?;
    let lines: Vec<(u64, u64)> = lines
        .into_iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    crate::stock::put_back(tx, &lines).await?;
    Ok(())
}

/// `DELETE /orders/{id}`: only a pending order (its stock returns) or a cancelled one.
pub async fn delete(pool: &MySqlPool, caller: AuthUser, id: u64) -> ApiResult<()> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let (_, status) = lock_for(tx, &caller, id).await?;
            match status {
                Status::Pending => return_stock(tx, id).await?,
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

/// A user's orders, newest first, keyset-paged.
pub async fn list_for_user(
    pool: &MySqlPool,
    user_id: u64,
    query: &OrderQuery,
) -> ApiResult<Page<OrderSummary>> {
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

/// The newest `limit` orders of a user.
pub async fn recent_for_user(
    pool: &MySqlPool,
    user_id: u64,
    limit: u32,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    sqlx::query_as!(
        OrderSummary,
        r#"SELECT id, status AS "status: Status", total AS "total: Money", amount_paid AS "amount_paid: Money",
                  created_at AS "created_at: DateTime<Utc>"
           FROM orders WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"#,
        user_id,
        limit
    )
    .fetch_all(pool)
    .await
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
