//! Who may place one more order: its owner's row locked (level 1 of the lock order in
//! [`crate::stock`]) and their running holds checked against the cap on pending orders.

use crate::caller::{Caller, Claimed};
use crate::error::{Conflict, Error, Result};
use crate::role::Role;
use platform::db::Tx;

/// Level 1 for a new order (see [`crate::stock`]): the owner's row, exclusive, with their
/// pending orders checked under it against `max_pending` (a conflict when the new one would
/// pass it) and the bound on them raised for the new order. Returns false when the owner
/// does not exist.
///
/// Every path that places an order for this owner takes the same exclusive lock first, so
/// their checks happen one after the other and the cap holds however many run at once; a
/// shared lock would let two of them count the same orders and both pass. Holds that have
/// run out do not count: those orders are as good as cancelled, whether or not the sweep
/// has got to them.
///
/// A bound known and below the cap admits the order with one statement that locks the row
/// and raises it. The row is locked whether or not the statement matches it (under
/// REPEATABLE READ an update keeps the lock on every row it examined), so the read that
/// follows a miss waits on nothing.
pub async fn admit(tx: &mut Tx<'static>, owner: u64, max_pending: u32) -> Result<bool> {
    let raised = sqlx::query!(
        "UPDATE users SET pending_orders_bound = pending_orders_bound + 1
         WHERE id = ? AND pending_orders_bound < ?",
        owner,
        max_pending
    )
    .execute(&mut **tx)
    .await?;
    if raised.rows_affected() == 1 {
        return Ok(true);
    }
    match lock_owner_row(tx, owner).await? {
        Some(row) => row.admit(tx, max_pending).await.map(|()| true),
        None => Ok(false),
    }
}

/// [`admit`] for an order of the token's holder for themselves, confirming `claimed` with
/// the same lock (see [`Claimed::confirm`]): the caller, or `None` when the account is gone
/// or the token is of an older version.
///
/// A customer whose bound is known and below the cap is admitted by one statement that
/// locks, confirms and raises at once; anyone else (an admin, whose role the order's
/// history records; a bound at the cap or unknown; a stale token) is read under the lock
/// that statement took and decided as [`admit`] decides.
pub async fn admit_claimed(
    tx: &mut Tx<'static>,
    claimed: Claimed,
    max_pending: u32,
) -> Result<Option<Caller>> {
    let raised = sqlx::query!(
        "UPDATE users SET pending_orders_bound = pending_orders_bound + 1
         WHERE id = ? AND token_version = ? AND role = 'customer' AND pending_orders_bound < ?",
        claimed.id,
        claimed.token_version,
        max_pending
    )
    .execute(&mut **tx)
    .await?;
    if raised.rows_affected() == 1 {
        return Ok(Some(Caller {
            id: claimed.id,
            role: Role::Customer,
        }));
    }
    match lock_owner_row(tx, claimed.id).await? {
        Some(row) if row.token_version == claimed.token_version => {
            let caller = row.caller;
            row.admit(tx, max_pending).await?;
            Ok(Some(caller))
        }
        _ => Ok(None),
    }
}

fn within_cap(pending: i64, max_pending: u32) -> Result<()> {
    if pending >= i64::from(max_pending) {
        return Err(Error::conflict(
            Conflict::TooManyPendingOrders,
            format!(
                "This customer already holds {pending} pending orders, the most one may hold at \
                 once; pay, cancel, or let one expire first."
            ),
        ));
    }
    Ok(())
}

/// The owner's row as the lock read it.
struct OwnerRow {
    caller: Caller,
    token_version: u32,
    bound: Option<u32>,
}

/// The row locked, exclusive, with the bound on its running holds (see the migration that
/// added `users.pending_orders_bound`). A primary-key read: an order reads the orders index,
/// where every concurrent order inserts its row, only when the bound is unknown or has
/// reached the cap.
async fn lock_owner_row(tx: &mut Tx<'static>, id: u64) -> Result<Option<OwnerRow>> {
    let row = sqlx::query!(
        r#"SELECT role AS "role: Role", token_version, pending_orders_bound
           FROM users WHERE id = ? FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| OwnerRow {
        caller: Caller { id, role: r.role },
        token_version: r.token_version,
        bound: r.pending_orders_bound,
    }))
}

impl OwnerRow {
    /// One more order under `cap`: the bound when it is known and below the cap, otherwise
    /// the running holds counted (so a refusal always rests on a count); then the bound is
    /// set to what was checked plus the new order.
    ///
    /// The bound is an upper bound on the running holds, never below them: each admitted
    /// order raises it in the transaction that writes the order (a refused or failed order
    /// rolls the raise back with it), and paying, cancelling and expiry end holds without
    /// lowering it. An order paid as it is placed (nothing to pay) raises it too; the next
    /// count corrects that.
    async fn admit(self, tx: &mut Tx<'static>, cap: u32) -> Result<()> {
        let id = self.caller.id;
        let pending = match self.bound.filter(|bound| *bound < cap) {
            Some(bound) => i64::from(bound),
            None => count_holds(tx, id).await?,
        };
        within_cap(pending, cap)?;
        sqlx::query!(
            "UPDATE users SET pending_orders_bound = ? WHERE id = ?",
            pending + 1,
            id
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// The owner's pending orders whose hold has not run out, read after the lock on their row
/// is granted: a plain read, which reads the latest committed orders when no earlier plain
/// read in the transaction has fixed its snapshot; taken under this lock, it sees every
/// order of theirs already committed, and no new one can be written before this commits.
///
/// The index is named because MariaDB plans a statement again at every execution, prepared
/// or not, and estimates each of the four indexes that start with the owner or the status
/// by descending into it (measured with the slow query log: 199 µs left to choose, 149 µs
/// with the index named). The named index is the one it picks anyway
/// (`shared/domain/tests/pending_count.rs` checks the rows read).
async fn count_holds(tx: &mut Tx<'static>, owner: u64) -> Result<i64> {
    let count = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "pending!: i64"
           FROM orders FORCE INDEX (orders_user_status_expires_idx)
           WHERE user_id = ? AND status = 'pending' AND expires_at > UTC_TIMESTAMP(6)"#,
        owner
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(count)
}
