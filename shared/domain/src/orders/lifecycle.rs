//! What happens to an order after it is placed: status changes, deletion, and the expiry
//! of its stock hold. Every decision is taken on the locked order row (see `crate::stock`),
//! and every status it enters is written to its history in the same transaction.

use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::history::{self, Actor};
use super::load::get;
use super::model::Order;
use super::status::{Status, StatusChange, Transition, transition};
use crate::caller::Caller;
use crate::discounts;
use crate::error::{Conflict, Error, Result};
use crate::events::{self, EventType};
use crate::stock;
use platform::db::{self, Tx};

/// Cancels orders whose rows the caller has locked (level 4) and that still hold their
/// stock (pending, paid or processing): discount uses and stock go back, completed payments are
/// refunded, the orders are marked cancelled and `actor` is noted in their history, all in
/// the caller's transaction. The one implementation of a cancel, whoever asks for it: a
/// customer, an admin, the expiry of a stock hold, or the sweep.
pub(crate) async fn cancel_locked(
    tx: &mut Tx<'static>,
    order_ids: &[u64],
    actor: Actor,
) -> Result<()> {
    if order_ids.is_empty() {
        return Ok(());
    }
    discounts::give_back(tx, order_ids).await?;
    let held = stock::held_by(tx, order_ids).await?;
    stock::put_back(tx, &held).await?;
    refund_and_cancel(tx, order_ids, actor).await
}

/// The rest of a cancel once the stock of the locked orders `order_ids` is back on the
/// shelf: completed payments refunded, the orders marked cancelled, `actor` noted in their
/// history. For a path that returns the stock in a pass over the products of its own
/// (account deletion, which updates ratings in the same pass).
pub(crate) async fn refund_and_cancel(
    tx: &mut Tx<'static>,
    order_ids: &[u64],
    actor: Actor,
) -> Result<()> {
    if order_ids.is_empty() {
        return Ok(());
    }
    // A locking read: the latest committed payments, which are written only under the
    // order rows this transaction holds.
    let mut completed: QueryBuilder<MySql> =
        QueryBuilder::new("SELECT id FROM payments WHERE status = 'completed' AND order_id IN (");
    stock::push_ids(&mut completed, order_ids);
    completed.push(" ORDER BY id FOR UPDATE");
    let refunded: Vec<u64> = completed.build_query_scalar().fetch_all(&mut **tx).await?;
    if !refunded.is_empty() {
        let mut refund: QueryBuilder<MySql> = QueryBuilder::new(
            "UPDATE payments SET status = 'refunded', updated_at = CURRENT_TIMESTAMP(6) \
             WHERE id IN (",
        );
        stock::push_ids(&mut refund, &refunded);
        refund.build().execute(&mut **tx).await?;
        for id in refunded {
            let payment = crate::payments::get(tx, id).await?;
            events::record(tx, EventType::PaymentRefunded, &payment).await?;
        }
    }

    let mut cancel: QueryBuilder<MySql> = QueryBuilder::new(
        "UPDATE orders SET status = 'cancelled', amount_paid = 0, \
         updated_at = CURRENT_TIMESTAMP(6) WHERE id IN (",
    );
    stock::push_ids(&mut cancel, order_ids);
    cancel.build().execute(&mut **tx).await?;
    history::record(tx, order_ids, Status::Cancelled, actor).await?;
    for id in order_ids {
        let order = get(tx, *id).await?;
        events::record(tx, EventType::OrderCancelled, &order).await?;
    }
    Ok(())
}

/// Locks an order row for a status change or deletion (level 4 of the lock order in
/// [`crate::stock`]), checking the caller may touch it, and returns its status and whether
/// it was settled just now. A pending order whose hold has run out is cancelled by the
/// system first, exactly as a cancel would, so the caller decides on what a sweep would
/// have left.
async fn lock_for(tx: &mut Tx<'static>, caller: &Caller, id: u64) -> Result<(Status, bool)> {
    let row = sqlx::query!(
        r#"SELECT user_id, status AS "status: Status",
                  (status = 'pending' AND expires_at <= UTC_TIMESTAMP(6)) AS "due!: bool"
           FROM orders WHERE id = ? FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Error::NotFound("order"))?;
    caller.require_owner_or_admin(row.user_id, "order")?;
    if row.due {
        cancel_locked(tx, &[id], Actor::System).await?;
        return Ok((Status::Cancelled, true));
    }
    Ok((row.status, false))
}

/// `PUT /orders/{id}`: applies an allowed status change in one transaction. When the order
/// turns out to have expired, its settlement is kept even if the change is then refused.
/// A tracking number comes with the move to `shipped`; sent again to a shipped order, it
/// replaces the one recorded (a correction), which is an admin's to make.
pub async fn set_status(
    pool: &MySqlPool,
    caller: Caller,
    id: u64,
    change: StatusChange,
) -> Result<Order> {
    db::transaction(pool, |tx| {
        let change = change.clone();
        Box::pin(async move {
            let to = change.status;
            let (from, settled) = lock_for(tx, &caller, id).await?;
            let effect = match transition(&caller, from, to) {
                Ok(effect) => effect,
                // Commit the settlement, answer the refusal.
                Err(refusal) if settled => return Ok(Err(refusal)),
                Err(refusal) => return Err(refusal),
            };
            let actor = Actor::of(&caller);
            match effect {
                Transition::Unchanged => {
                    if let Some(tracking) = &change.tracking_number {
                        caller.require_admin()?;
                        write_tracking(tx, id, tracking).await?;
                    }
                }
                Transition::Move => {
                    write_status(tx, id, to, actor).await?;
                    if let Some(tracking) = &change.tracking_number {
                        write_tracking(tx, id, tracking).await?;
                    }
                    if let Some(kind) = announced(to) {
                        let order = get(tx, id).await?;
                        events::record(tx, kind, &order).await?;
                    }
                }
                Transition::Cancel => cancel_locked(tx, &[id], actor).await?,
            }
            Ok(get(tx, id).await)
        })
    })
    .await?
}

/// The event a move into `status` is announced by, if the contract lists one (`paid` and
/// `cancelled` are recorded where they happen: payments and cancels).
fn announced(status: Status) -> Option<EventType> {
    match status {
        Status::Shipped => Some(EventType::OrderShipped),
        Status::Delivered => Some(EventType::OrderDelivered),
        _ => None,
    }
}

async fn write_status(tx: &mut Tx<'static>, id: u64, status: Status, actor: Actor) -> Result<()> {
    sqlx::query!(
        "UPDATE orders SET status = ?, updated_at = CURRENT_TIMESTAMP(6) WHERE id = ?",
        status,
        id
    )
    .execute(&mut **tx)
    .await?;
    history::record(tx, &[id], status, actor).await?;
    Ok(())
}

async fn write_tracking(tx: &mut Tx<'static>, id: u64, tracking: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE orders SET tracking_number = ?, updated_at = CURRENT_TIMESTAMP(6) WHERE id = ?",
        tracking,
        id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `DELETE /orders/{id}`: a pending order (its stock returns) or a cancelled one, only if
/// no payment was ever made on it. A payment record, completed or refunded, is the shop's
/// account of money taken or given back, and is never destroyed; the schema refuses it too
/// (payments hold their order by a key that does not cascade). When the order turns out to
/// have expired, its settlement is kept even if the deletion is then refused.
pub async fn delete(pool: &MySqlPool, caller: Caller, id: u64) -> Result<()> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let (status, settled) = lock_for(tx, &caller, id).await?;
            let refusal = match status {
                Status::Pending | Status::Cancelled if has_payments(tx, id).await? => {
                    Some(has_payments_refusal())
                }
                Status::Pending | Status::Cancelled => None,
                other => Some(Error::conflict(
                    Conflict::OrderNotDeletable,
                    format!(
                        "A {} order cannot be deleted; only pending or cancelled ones.",
                        other.as_str()
                    ),
                )),
            };
            match refusal {
                Some(refusal) if settled => return Ok(Err(refusal)),
                Some(refusal) => return Err(refusal),
                None => {}
            }
            if status == Status::Pending {
                discounts::give_back(tx, &[id]).await?;
                let held = stock::held_by(tx, &[id]).await?;
                stock::put_back(tx, &held).await?;
            }
            sqlx::query!("DELETE FROM orders WHERE id = ?", id)
                .execute(&mut **tx)
                .await
                .map_err(|err| {
                    if db::is_foreign_key_violation(&err) {
                        has_payments_refusal()
                    } else {
                        err.into()
                    }
                })?;
            Ok(Ok(()))
        })
    })
    .await?
}

fn has_payments_refusal() -> Error {
    Error::conflict(
        Conflict::OrderHasPayments,
        "This order has payment records, which are kept; it cannot be deleted (cancel it instead).",
    )
}

/// Whether any payment was ever recorded on the locked order. Payments are written only
/// under the order's row lock, which this transaction holds: none can appear meanwhile.
async fn has_payments(tx: &mut Tx<'static>, order_id: u64) -> Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM payments WHERE order_id = ?) AS "found!: bool""#,
        order_id
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(found)
}

/// Cancels the order if it is pending and its hold has run out (a system cancel: stock
/// back, completed payments refunded). Returns whether it did. Safe to call at any time,
/// from any number of places at once: the decision is taken on the locked row.
pub async fn settle(pool: &MySqlPool, id: u64) -> Result<bool> {
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
            cancel_locked(tx, &[id], Actor::System).await?;
            Ok(true)
        })
    })
    .await
}

/// Settles every order of a user whose hold has run out, before their orders are listed.
/// Usually finds none, with one look at the (user, status) index.
pub async fn settle_due_of_user(pool: &MySqlPool, user_id: u64) -> Result<()> {
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
pub async fn expire_due(pool: &MySqlPool, batch: u32) -> Result<u64> {
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
            cancel_locked(tx, &ids, Actor::System).await?;
            Ok(ids.len() as u64)
        })
    })
    .await
}
