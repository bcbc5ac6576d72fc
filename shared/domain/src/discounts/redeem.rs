//! Using a discount on an order, and giving the use back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use sqlx::{MySql, QueryBuilder};

use super::model::{Code, Kind, Value};
use crate::error::{Conflict, Error, Result};
use crate::money::Money;
use crate::stock;
use platform::db::Tx;

/// What an order took off, as the order keeps it: the discount may change or go later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub code: String,
    pub kind: Kind,
    pub value: Value,
    pub amount: Money,
}

/// What a discount of `kind` and `value` takes off `subtotal`: a percentage rounded to the
/// cent, half to even, once for the whole order (rounding each line would make the sum of
/// roundings drift); an amount, at most the subtotal.
pub fn price(kind: Kind, value: Decimal, subtotal: Money) -> Money {
    let off = match kind {
        Kind::Percent => (subtotal.amount() * value / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven),
        Kind::Amount => value.min(subtotal.amount()),
    };
    Money::from_db(off)
}

/// What a new order comes to: its discount, if it used one, and its total.
#[derive(Debug, Clone)]
pub struct Priced {
    /// The discount row that counts the use.
    pub discount_id: Option<u64>,
    pub discount: Option<Applied>,
    /// The subtotal less the discount's amount.
    pub total: Money,
}

/// Prices a new order of `user_id` whose lines come to `subtotal`: with a `code`, uses it
/// ([`redeem`], which locks the discount row until the commit), else the total is the
/// subtotal.
pub async fn price_order(
    tx: &mut Tx<'static>,
    code: Option<&Code>,
    user_id: u64,
    subtotal: Money,
    now: DateTime<Utc>,
) -> Result<Priced> {
    let Some(code) = code else {
        return Ok(Priced {
            discount_id: None,
            discount: None,
            total: subtotal,
        });
    };
    let (id, applied) = redeem(tx, code, user_id, subtotal, now).await?;
    Ok(Priced {
        discount_id: Some(id),
        total: Money::from_db(subtotal.amount() - applied.amount.amount()),
        discount: Some(applied),
    })
}

fn not_applicable(detail: impl Into<String>) -> Error {
    Error::conflict(Conflict::DiscountNotApplicable, detail)
}

/// Uses the discount `code` on a new order of `user_id` whose lines come to `subtotal`, at
/// the database's `now`, in the order's transaction: refuses (a conflict) a code that is unknown,
/// inactive, not started, ended, used up in total or by this customer, or whose minimum
/// subtotal is not met; otherwise counts the use. Returns the discount's id and what the
/// order takes off.
///
/// The decision is taken on the discount row, locked (the discount level of the lock order
/// in [`crate::stock`]): every order using the code queues there, reads the latest
/// committed `times_used`, and raises it before it lets the next one look, so the limit
/// holds however many checkouts run at once. The row is found by a plain read of its id
/// and then locked by primary key: a locking read by code that finds nothing would lock
/// the gap where the code would go. The customer's own uses are counted by a plain read,
/// which sees all of them: their orders are placed only under their row lock, held here.
pub async fn redeem(
    tx: &mut Tx<'static>,
    code: &Code,
    user_id: u64,
    subtotal: Money,
    now: DateTime<Utc>,
) -> Result<(u64, Applied)> {
    let unknown = || not_applicable(format!("The discount code {code} does not exist."));
    let id = sqlx::query_scalar!("SELECT id FROM discounts WHERE code = ?", code.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(unknown)?;
    let d = sqlx::query!(
        r#"SELECT code, kind AS "kind: Kind", value, min_subtotal,
                  starts_at AS "starts_at: DateTime<Utc>", ends_at AS "ends_at: DateTime<Utc>",
                  usage_limit, per_customer_limit, times_used, active AS "active: bool"
           FROM discounts WHERE id = ? FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(unknown)?;
    if !d.active {
        return Err(not_applicable(format!(
            "The discount code {code} is not active."
        )));
    }
    if d.starts_at > now {
        return Err(not_applicable(format!(
            "The discount code {code} is not valid yet."
        )));
    }
    if d.ends_at.is_some_and(|ends| ends <= now) {
        return Err(not_applicable(format!(
            "The discount code {code} has ended."
        )));
    }
    if d.usage_limit.is_some_and(|limit| d.times_used >= limit) {
        return Err(not_applicable(format!(
            "The discount code {code} has been used as many times as it may be."
        )));
    }
    if let Some(limit) = d.per_customer_limit {
        let used = sqlx::query_scalar!(
            "SELECT COUNT(*) FROM orders
             WHERE discount_id = ? AND user_id = ? AND status <> 'cancelled'
               AND NOT (status = 'pending' AND expires_at <= ?)",
            id,
            user_id,
            now
        )
        .fetch_one(&mut **tx)
        .await?;
        if used >= i64::from(limit) {
            return Err(not_applicable(format!(
                "This customer has already used the discount code {code} as many times as one may."
            )));
        }
    }
    if let Some(min) = d.min_subtotal
        && subtotal.amount() < min
    {
        return Err(not_applicable(format!(
            "The discount code {code} needs a subtotal of at least {}.",
            Money::from_db(min)
        )));
    }
    sqlx::query!(
        "UPDATE discounts SET times_used = times_used + 1 WHERE id = ?",
        id
    )
    .execute(&mut **tx)
    .await?;
    let applied = Applied {
        code: d.code,
        kind: d.kind,
        value: Value {
            kind: d.kind,
            amount: d.value,
        },
        amount: price(d.kind, d.value, subtotal),
    };
    Ok((id, applied))
}

/// Gives back the uses of the locked orders `order_ids` that still hold one (used a
/// discount and are not cancelled yet), before they are cancelled or deleted: discount rows
/// in ascending id order, after the order rows and before the product rows (the lock order
/// of [`crate::stock`]). Because every caller holds the order rows and then cancels or
/// deletes them, a second cancel or deletion finds them cancelled or gone: once only. A
/// discount deleted since gives nothing back.
pub async fn give_back(tx: &mut Tx<'static>, order_ids: &[u64]) -> Result<(), sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(());
    }
    // A locking read of rows the caller holds already: it costs no wait, and it reads
    // them as they are now rather than as the transaction's snapshot has them.
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT discount_id FROM orders \
         WHERE discount_id IS NOT NULL AND status <> 'cancelled' AND id IN (",
    );
    stock::push_ids(&mut qb, order_ids);
    qb.push(" FOR UPDATE");
    let used: Vec<u64> = qb.build_query_scalar().fetch_all(&mut **tx).await?;
    let mut uses: BTreeMap<u64, u64> = BTreeMap::new();
    for discount_id in used {
        *uses.entry(discount_id).or_default() += 1;
    }
    for (discount_id, count) in uses {
        sqlx::query!(
            "UPDATE discounts SET times_used = times_used - ? WHERE id = ?",
            count,
            discount_id
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    #[test]
    fn percentages_round_half_to_even_once() {
        // 12.5 % of 0.20 is 0.025: half a cent, to the even cent.
        assert_eq!(
            price(Kind::Percent, Decimal::new(125, 1), money("0.20")),
            Money::from_db(Decimal::new(2, 2))
        );
        // 10 % of 0.35 is 0.035: half a cent, up to the even cent.
        assert_eq!(
            price(Kind::Percent, Decimal::TEN, money("0.35")).to_string(),
            "0.04"
        );
        assert_eq!(
            price(Kind::Percent, Decimal::TEN, money("0.45")).to_string(),
            "0.04"
        );
        assert_eq!(
            price(Kind::Percent, Decimal::ONE_HUNDRED, money("19.99")).to_string(),
            "19.99"
        );
        assert_eq!(
            price(Kind::Percent, Decimal::from(15), money("33.33")).to_string(),
            "5.00"
        );
    }

    #[test]
    fn amounts_are_capped_at_the_subtotal() {
        assert_eq!(
            price(Kind::Amount, Decimal::new(500, 2), money("19.99")).to_string(),
            "5.00"
        );
        assert_eq!(
            price(Kind::Amount, Decimal::new(5000, 2), money("19.99")).to_string(),
            "19.99"
        );
    }
}
