//! Payments: money in against an order's total, never more, and refunds on cancel.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::auth::AuthUser;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::money::Money;
use crate::orders::Status;
use crate::page::{Limit, Order as SortOrder, Page, into_page};
use crate::time::timestamp;
use crate::validate::{Checks, Validate, whole};

/// Read from a string whatever the JSON holds, so that `{"method": 1}` is a 400 naming
/// `method` like any other wrongly typed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case", try_from = "String")]
#[sqlx(rename_all = "snake_case")]
pub enum Method {
    Card,
    Paypal,
    BankTransfer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Completed,
    Refunded,
}

impl TryFrom<String> for PaymentStatus {
    type Error = String;

    fn try_from(label: String) -> Result<Self, String> {
        match label.as_str() {
            "completed" => Ok(Self::Completed),
            "refunded" => Ok(Self::Refunded),
            _ => Err(format!("unknown payment status {label:?}")),
        }
    }
}

impl TryFrom<String> for Method {
    type Error = &'static str;

    fn try_from(label: String) -> Result<Self, Self::Error> {
        match label.as_str() {
            "card" => Ok(Self::Card),
            "paypal" => Ok(Self::Paypal),
            "bank_transfer" => Ok(Self::BankTransfer),
            _ => Err("must be one of card, paypal, bank_transfer"),
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Payment {
    pub id: u64,
    pub order_id: u64,
    pub amount: Money,
    #[sqlx(try_from = "String")]
    pub method: Method,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    #[serde(deserialize_with = "whole")]
    pub order_id: u64,
    pub amount: Money,
    pub method: Method,
}

impl Validate for NewPayment {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Checks::new()
            .check(
                self.order_id > 0,
                "order_id",
                "must be a positive integer id",
            )
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PaymentQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for PaymentQuery {}

const SELECT: &str =
    "SELECT p.id, p.order_id, p.amount, p.method, p.status, p.created_at FROM payments p";

/// Records a payment inside `tx`. The order row is locked while what remains due is
/// computed, so concurrent payments queue and can never add up to more than the total;
/// the payment that completes the total marks the order paid in the same transaction.
/// An order whose stock hold has run out takes no payment (409), even in the instant
/// before anything has settled it.
pub async fn create_in(
    tx: &mut Tx<'static>,
    caller: &AuthUser,
    input: &NewPayment,
) -> ApiResult<u64> {
    let order = sqlx::query!(
        r#"SELECT user_id, status AS "status: Status", total, amount_paid,
                  (status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)) AS "due!: bool"
           FROM orders WHERE id = ? FOR UPDATE"#,
        input.order_id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    caller.require_owner_or_admin(order.user_id, "order")?;
    if order.due {
        return Err(order_expired());
    }
    if order.status != Status::Pending {
        return Err(ApiError::conflict(
            "order-not-payable",
            format!(
                "The order is {}; only pending orders take payments.",
                order.status.as_str()
            ),
        ));
    }
    let due: Decimal = order.total - order.amount_paid;
    let amount = input.amount.amount();
    if amount > due {
        return Err(ApiError::Conflict {
            kind: "overpayment",
            detail: format!("Only {} remains due on this order.", Money::from_db(due)),
            errors: vec![FieldError::new(
                "amount",
                format!("must be at most {}", Money::from_db(due)),
            )],
        });
    }
    let id = sqlx::query!(
        "INSERT INTO payments (order_id, amount, method) VALUES (?, ?, ?)",
        input.order_id,
        amount,
        input.method
    )
    .execute(&mut **tx)
    .await?
    .last_insert_id();
    sqlx::query!(
        "UPDATE orders SET amount_paid = amount_paid + ?,
                status = IF(amount_paid = total, 'paid', status),
                updated_at = CURRENT_TIMESTAMP(6)
         WHERE id = ?",
        amount,
        input.order_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

fn order_expired() -> ApiError {
    ApiError::conflict(
        "order-expired",
        "The order's stock hold has expired and the order is cancelled; place a new order.",
    )
}

pub async fn get(conn: &mut sqlx::MySqlConnection, id: u64) -> ApiResult<Payment> {
    sqlx::query_as::<_, Payment>(&format!("{SELECT} WHERE p.id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(ApiError::NotFound("payment"))
}

/// A payment the caller may see: one on another customer's order is "not found".
pub async fn get_for(pool: &MySqlPool, caller: &AuthUser, id: u64) -> ApiResult<Payment> {
    let payment = get(&mut *pool.acquire().await?, id).await?;
    let owner = order_owner(pool, payment.order_id).await?;
    caller
        .require_owner_or_admin(owner, "payment")
        .map(|()| payment)
}

const LIST_SORT: &str = "created_at";
const LIST_ORDER: SortOrder = SortOrder {
    column: "p.created_at",
    id_column: "p.id",
    descending: false,
};

/// An order's payments, oldest first.
pub async fn list_for_order(
    pool: &MySqlPool,
    caller: &AuthUser,
    order_id: u64,
    query: &PaymentQuery,
) -> ApiResult<Page<Payment>> {
    let owner = order_owner(pool, order_id).await?;
    caller.require_owner_or_admin(owner, "order")?;
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(SELECT);
    qb.push(" WHERE p.order_id = ").push_bind(order_id);
    LIST_ORDER.push_time_cursor(&mut qb, LIST_SORT, query.cursor.as_deref())?;
    LIST_ORDER.push_order_and_limit(&mut qb, query.limit);
    let rows: Vec<Payment> = qb.build_query_as().fetch_all(pool).await?;
    Ok(into_page(rows, query.limit, LIST_SORT, |p| {
        (crate::time::cursor_value(p.created_at), p.id)
    }))
}

async fn order_owner(pool: &MySqlPool, order_id: u64) -> ApiResult<u64> {
    sqlx::query_scalar!("SELECT user_id FROM orders WHERE id = ?", order_id)
        .fetch_optional(pool)
        .await?
        .ok_or(ApiError::NotFound("order"))
}
