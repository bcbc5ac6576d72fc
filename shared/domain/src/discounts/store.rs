//! Discounts as the admin manages them: create, list (newest first), read, change, delete.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::model::{Discount, DiscountPatch, DiscountQuery, Kind, NewDiscount, Value, check_value};
use crate::error::{Conflict, Error, FieldError, Result};
use crate::money::Money;
use crate::page::{Keyset, Page, into_page};
use crate::validate::Checks;
use platform::db::{self, Tx};

/// A discount row as stored.
#[derive(sqlx::FromRow)]
struct Row {
    id: u64,
    code: String,
    #[sqlx(try_from = "String")]
    kind: Kind,
    value: Decimal,
    min_subtotal: Option<Decimal>,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    usage_limit: Option<u32>,
    per_customer_limit: Option<u32>,
    times_used: u32,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Discount {
    fn from(row: Row) -> Self {
        Discount {
            id: row.id,
            code: row.code,
            kind: row.kind,
            value: Value {
                kind: row.kind,
                amount: row.value,
            },
            min_subtotal: row.min_subtotal.map(Money::from_db),
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            usage_limit: row.usage_limit,
            per_customer_limit: row.per_customer_limit,
            times_used: row.times_used,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const SELECT: &str = "SELECT d.id, d.code, CAST(d.kind AS CHAR) AS kind, d.value, d.min_subtotal, \
     d.starts_at, d.ends_at, d.usage_limit, d.per_customer_limit, d.times_used, d.active, \
     d.created_at, d.updated_at FROM discounts d";

const SORT: &str = "-created_at";
const ORDER: Keyset = Keyset {
    column: "d.created_at",
    id_column: "d.id",
    descending: true,
};

pub async fn list(pool: &MySqlPool, query: &DiscountQuery) -> Result<Page<Discount>> {
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(SELECT);
    qb.push(" WHERE 1 = 1");
    ORDER.push_time_cursor(&mut qb, SORT, query.cursor.as_deref())?;
    ORDER.push_order_and_limit(&mut qb, query.limit);
    let rows: Vec<Row> = qb.build_query_as().fetch_all(pool).await?;
    let items: Vec<Discount> = rows.into_iter().map(Discount::from).collect();
    Ok(into_page(items, query.limit, SORT, |d| {
        (crate::time::cursor_value(d.created_at), d.id)
    }))
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Discount> {
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(SELECT);
    qb.push(" WHERE d.id = ").push_bind(id);
    let row: Option<Row> = qb.build_query_as().fetch_optional(pool).await?;
    row.map(Discount::from).ok_or(Error::NotFound("discount"))
}

/// The discount row, locked (the discount level of the lock order in [`crate::stock`]).
async fn lock(tx: &mut Tx<'static>, id: u64) -> Result<Row> {
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(SELECT);
    qb.push(" WHERE d.id = ").push_bind(id).push(" FOR UPDATE");
    let row: Option<Row> = qb.build_query_as().fetch_optional(&mut **tx).await?;
    row.ok_or(Error::NotFound("discount"))
}

/// A new discount, starting now unless told otherwise; the database's clock says when now
/// is, as it does for the orders that will use it. Instants are bound as `DATETIME`
/// values: bound as a `TIMESTAMP`, one past 2038 would not be stored.
pub async fn create(pool: &MySqlPool, input: NewDiscount) -> Result<Discount> {
    let now: DateTime<Utc> =
        sqlx::query_scalar!(r#"SELECT UTC_TIMESTAMP(6) AS "now!: DateTime<Utc>""#)
            .fetch_one(pool)
            .await?;
    let starts_at = input.starts_at.unwrap_or(now);
    if let Some(ends_at) = input.ends_at
        && ends_at <= starts_at
    {
        return Err(Error::invalid("ends_at", "must be after starts_at"));
    }
    let id = sqlx::query!(
        "INSERT INTO discounts (code, kind, value, min_subtotal, starts_at, ends_at, usage_limit,
                                per_customer_limit, active, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        input.code.as_str(),
        input.kind,
        input.value.amount(),
        input.min_subtotal.map(Money::amount),
        starts_at.naive_utc(),
        input.ends_at.map(|at| at.naive_utc()),
        input.usage_limit,
        input.per_customer_limit,
        input.active.unwrap_or(true),
        now,
        now
    )
    .execute(pool)
    .await
    .map_err(|err| {
        if db::is_unique_violation(&err) {
            Error::Conflict {
                kind: Conflict::DuplicateDiscountCode,
                detail: "A discount with this code already exists.".into(),
                errors: vec![FieldError::new("code", "is already taken")],
            }
        } else {
            err.into()
        }
    })?
    .last_insert_id();
    get(pool, id).await
}

/// Changes a discount on its locked row, so a limit is never set below the uses that
/// orders are counting at the same moment.
pub async fn update(pool: &MySqlPool, id: u64, patch: DiscountPatch) -> Result<Discount> {
    let patch = std::sync::Arc::new(patch);
    db::transaction(pool, |tx| {
        let patch = patch.clone();
        Box::pin(async move {
            let row = lock(tx, id).await?;
            let kind = patch.kind.unwrap_or(row.kind);
            let value = patch.value.map(Money::amount).unwrap_or(row.value);
            let starts_at = patch.starts_at.unwrap_or(row.starts_at);
            let ends_at = patch.ends_at.unwrap_or(row.ends_at);
            let usage_limit = patch.usage_limit.unwrap_or(row.usage_limit);
            let mut checks = Checks::new();
            // A kind changed alone must still suit the value it keeps, and the other way.
            check_value(&mut checks, kind, Money::from_db(value));
            if let Some(ends_at) = ends_at {
                checks.check(ends_at > starts_at, "ends_at", "must be after starts_at");
            }
            checks.finish().map_err(Error::Invalid)?;
            if let Some(limit) = usage_limit
                && limit < row.times_used
            {
                return Err(Error::Conflict {
                    kind: Conflict::UsageLimitBelowUses,
                    detail: format!(
                        "This discount has been used {} times; its usage limit cannot be lower.",
                        row.times_used
                    ),
                    errors: vec![FieldError::new(
                        "usage_limit",
                        format!("must be at least {}", row.times_used),
                    )],
                });
            }
            sqlx::query!(
                "UPDATE discounts SET kind = ?, value = ?, min_subtotal = ?, starts_at = ?,
                        ends_at = ?, usage_limit = ?, per_customer_limit = ?, active = ?,
                        updated_at = CURRENT_TIMESTAMP(6)
                 WHERE id = ?",
                kind,
                value,
                patch
                    .min_subtotal
                    .map(|m| m.map(Money::amount))
                    .unwrap_or(row.min_subtotal),
                starts_at.naive_utc(),
                ends_at.map(|at| at.naive_utc()),
                usage_limit,
                patch.per_customer_limit.unwrap_or(row.per_customer_limit),
                patch.active.unwrap_or(row.active),
                id
            )
            .execute(&mut **tx)
            .await?;
            Ok(Discount::from(lock(tx, id).await?))
        })
    })
    .await
}

/// Orders that used it keep their copy of code, kind, value and amount.
pub async fn delete(pool: &MySqlPool, id: u64) -> Result<()> {
    let result = sqlx::query!("DELETE FROM discounts WHERE id = ?", id)
        .execute(pool)
        .await?;
    if result.rows_affected() == 0 {
        return Err(Error::NotFound("discount"));
    }
    Ok(())
}
