//! Payments: money in against an order's total, never more, and refunds on cancel.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::caller::Caller;
use crate::error::{Conflict, Error, FieldError, Result};
use crate::events::{self, EventType};
use crate::id::Id;
use crate::money::Money;
use crate::orders::history::{self, Actor};
use crate::orders::status::Status;
use crate::page::{Keyset, Limit, Page, into_page};
use crate::time::timestamp;
use crate::validate::Validate;
use platform::db::Tx;

/// Read from a string whatever the JSON holds, so that `{"method": 1}` is invalid input naming
/// `method` like any other wrongly typed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case", try_from = "String")]
#[sqlx(rename_all = "snake_case")]
pub enum Method {
    Card,
    Paypal,
    BankTransfer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
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
    pub order_id: Id,
    pub amount: Money,
    pub method: Method,
}

impl Validate for NewPayment {}

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
/// An order whose stock hold has run out takes no payment (a conflict), even in the instant
/// before anything has settled it.
async fn create_in(tx: &mut Tx<'static>, caller: &Caller, input: &NewPayment) -> Result<u64> {
    let order = sqlx::query!(
        r#"SELECT user_id, status AS "status: Status", total, amount_paid,
                  (status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)) AS "due!: bool"
           FROM orders WHERE id = ? FOR UPDATE"#,
        input.order_id.get()
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("order"))?;
    caller.require_owner_or_admin(order.user_id, "order")?;
    if order.due {
        return Err(order_expired());
    }
    if order.status != Status::Pending {
        return Err(Error::conflict(
            Conflict::OrderNotPayable,
            format!(
                "The order is {}; only pending orders take payments.",
                order.status.as_str()
            ),
        ));
    }
    let due: Decimal = order.total - order.amount_paid;
    let amount = input.amount.amount();
    if amount > due {
        return Err(Error::Conflict {
            kind: Conflict::Overpayment,
            detail: format!("Only {} remains due on this order.", Money::from_db(due)),
            errors: vec![FieldError::new(
                "amount",
                format!("must be at most {}", Money::from_db(due)),
            )],
        });
    }
    let id = sqlx::query!(
        "INSERT INTO payments (order_id, amount, method) VALUES (?, ?, ?)",
        input.order_id.get(),
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
        input.order_id.get()
    )
    .execute(&mut **tx)
    .await?;
    let payment = get(tx, id).await?;
    events::record(tx, EventType::PaymentCreated, &payment).await?;
    if amount == due {
        history::record(tx, &[input.order_id.get()], Status::Paid, Actor::of(caller)).await?;
        let order = crate::orders::load::get(tx, input.order_id.get()).await?;
        events::record(tx, EventType::OrderPaid, &order).await?;
    }
    Ok(id)
}

fn order_expired() -> Error {
    Error::conflict(
        Conflict::OrderExpired,
        "The order's stock hold has expired and the order is cancelled; place a new order.",
    )
}

pub async fn get(conn: &mut sqlx::MySqlConnection, id: u64) -> Result<Payment> {
    sqlx::query_as!(
        Payment,
        r#"SELECT id, order_id, amount AS "amount: Money", method AS "method: Method",
                  status AS "status: PaymentStatus", created_at AS "created_at: DateTime<Utc>"
           FROM payments WHERE id = ?"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("payment"))
}

/// Records a payment in `tx` and reads it back: what `POST /payments` answers.
pub async fn record(tx: &mut Tx<'static>, caller: &Caller, input: &NewPayment) -> Result<Payment> {
    let id = create_in(tx, caller, input).await?;
    get(tx, id).await
}

/// A payment the caller may see: one on another customer's order is "not found".
pub async fn get_for(pool: &MySqlPool, caller: &Caller, id: u64) -> Result<Payment> {
    let payment = get(&mut *pool.acquire().await?, id).await?;
    let owner = order_owner(pool, payment.order_id).await?;
    caller
        .require_owner_or_admin(owner, "payment")
        .map(|()| payment)
}

const LIST_SORT: &str = "created_at";
const LIST_ORDER: Keyset = Keyset {
    column: "p.created_at",
    id_column: "p.id",
    descending: false,
};

/// An order's payments, oldest first.
pub async fn list_for_order(
    pool: &MySqlPool,
    caller: &Caller,
    order_id: u64,
    query: &PaymentQuery,
) -> Result<Page<Payment>> {
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

/// The owner of an order: `None` for an anonymised one (its customer deleted their
/// account).
async fn order_owner(pool: &MySqlPool, order_id: u64) -> Result<Option<u64>> {
    sqlx::query_scalar!("SELECT user_id FROM orders WHERE id = ?", order_id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound("order"))
}
