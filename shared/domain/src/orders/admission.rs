//! Who may place one more order: its owner's row locked (level 1 of the lock order in
//! [`crate::stock`]) and their running holds checked against the cap on pending orders.

use crate::caller::{Caller, Claimed};
use crate::error::{Conflict, Error, Result};
use crate::role::Role;
use platform::db::Tx;

/// Level 1 for a new order (see [`crate::stock`]): the owner's row, exclusive, with their
/// pending orders checked under it against `max_pending` (a conflict when the new one would
/// pass it). Returns false when the owner does not exist.
///
/// Every path that places an order for this owner takes the same exclusive lock first, so
/// their checks happen one after the other and the cap holds however many run at once; a
/// shared lock would let two of them count the same orders and both pass. Holds that have
/// run out do not count: those orders are as good as cancelled, whether or not the sweep
/// has got to them.
pub(crate) async fn admit(tx: &mut Tx<'static>, owner: u64, max_pending: u32) -> Result<bool> {
    match lock_owner(tx, owner, max_pending).await? {
        Some(locked) => within_cap(locked.pending, max_pending).map(|()| true),
        None => Ok(false),
    }
}

pub(super) fn within_cap(pending: i64, max_pending: u32) -> Result<()> {
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

/// Level 1: the caller's own row, exclusive, read with the token version that confirms
/// `claimed` (see [`Claimed::confirm`]), and the account's running holds checked against
/// `cap` (see [`Locked::pending`]). `None` when the account is gone or the token is of an
/// older version.
pub async fn lock_claimed(
    tx: &mut Tx<'static>,
    claimed: Claimed,
    cap: u32,
) -> Result<Option<Locked>> {
    match lock_owner_row(tx, claimed.id).await? {
        Some(row) if row.token_version == claimed.token_version => {
            Ok(Some(row.holds(tx, cap).await?))
        }
        _ => Ok(None),
    }
}

/// Level 1: a new order's owner, exclusive, and their running holds checked against `cap`
/// (see [`Locked::pending`]). `None` when the account does not exist.
pub async fn lock_owner(tx: &mut Tx<'static>, owner: u64, cap: u32) -> Result<Option<Locked>> {
    match lock_owner_row(tx, owner).await? {
        Some(row) => Ok(Some(row.holds(tx, cap).await?)),
        None => Ok(None),
    }
}

/// An account locked for a new order of theirs.
#[derive(Debug, Clone, Copy)]
pub struct Locked {
    /// The account as a caller (its current role).
    pub caller: Caller,
    /// Its pending orders whose hold has not run out, or a bound above them that is below
    /// the cap: the bound the account's row keeps (see the migration that added
    /// `users.pending_orders_bound`) when it is below the cap, the orders counted under the
    /// lock otherwise. So a refusal always rests on a count.
    pub pending: i64,
}

/// The owner's row as the lock read it.
struct OwnerRow {
    caller: Caller,
    token_version: u32,
    bound: Option<u32>,
}

/// The row locked, exclusive, with the bound on its running holds. A primary-key read: an
/// order no longer reads the orders index, where every concurrent order inserts its row,
/// unless the bound has reached the cap.
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
    /// The bound when it is below `cap`; otherwise (or when it is not known) the running
    /// holds counted, and the bound set to the count when a new order fits under it. The
    /// order that follows raises it ([`raise_bound`]).
    async fn holds(self, tx: &mut Tx<'static>, cap: u32) -> Result<Locked> {
        let caller = self.caller;
        if let Some(bound) = self.bound.filter(|bound| *bound < cap) {
            return Ok(Locked {
                caller,
                pending: i64::from(bound),
            });
        }
        let pending = count_holds(tx, caller.id).await?;
        if pending < i64::from(cap) {
            sqlx::query!(
                "UPDATE users SET pending_orders_bound = ? WHERE id = ?",
                pending,
                caller.id
            )
            .execute(&mut **tx)
            .await?;
        }
        Ok(Locked { caller, pending })
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

/// The statement that raises `owner`'s bound for a new pending order, for the batch that
/// takes its stock (see `crate::orders::create`): the row is locked since level 1, so it
/// waits on nothing. A bound that is not known stays so.
pub(crate) fn raise_bound(owner: u64) -> String {
    format!("UPDATE users SET pending_orders_bound = pending_orders_bound + 1 WHERE id = {owner}")
}
