//! Stock movements and the one lock order every stock or money change follows.
//!
//! # Lock order
//!
//! A transaction that moves stock or money takes its row locks in this order, and decides
//! only on rows it has locked (a locking read sees the latest committed row; a plain read
//! may see a snapshot from before a concurrent commit):
//!
//! 1. the users the work is for, in ascending id order: exclusive (`FOR UPDATE`) when
//!    something of theirs is counted under it (pending orders, cart lines, addresses) and to
//!    delete an account, shared (`LOCK IN SHARE MODE`, which MariaDB and MySQL both
//!    accept) merely to act for them;
//! 2. their idempotency key (its insert also holds the caller's row, through the foreign
//!    key);
//! 3. their cart lines;
//! 4. order rows, `FOR UPDATE`, before anything is decided about them;
//!    - 4a: then discount rows, in ascending id order: a new order's use is counted on
//!      its locked discount row, and a cancel or deletion gives uses back after locking
//!      the orders (see [`crate::discounts`]);
//! 5. product rows, in ascending id order (rating updates; any change to a product's
//!    variants, which keeps its lowest price and its last variant on the locked row);
//! 6. variant rows, in ascending id order (stock);
//! 7. payment rows;
//! 8. rows it inserts (an order, its lines, its history), which no one else holds yet.
//!
//! A path may skip levels but never goes back up one. Placing an order is the one path
//! that inserts before it locks stock: it locks its discount row, if it uses a code (level
//! 4a: it locks no order row), then writes the order, its lines and its history without
//! locking any product or variant (order lines have no foreign key to either for that
//! reason), then takes every variant row at once in one guarded `UPDATE`, its last
//! statement, because those rows are what every buyer of a popular variant queues on. It
//! never locks a product row, so a flash sale on one variant does not hold up the
//! product's other variants. Its inserted rows are its own, so only product and variant
//! deletion meet it there, and in the same order: deleting either takes its cart lines,
//! then its order lines, then the product and variant rows, as checkout takes the cart
//! lines, writes order lines and takes the variants last. So two
//! paths touching the same order queue on its row and the second acts on what the first
//! committed: a cancel and an account deletion return an order's stock once, not twice; a
//! payment cannot land on an order that a deletion has already decided to remove. A
//! cancel, an expiry and an account deletion give a discount use back between the order
//! row and the products, so they meet a placement holding the discount row in the same
//! order; deleting a discount locks only its own row (orders keep a copy, with no key to
//! it), so it never waits on an order.
//!
//! # Why the owner of a new order is locked exclusively
//!
//! A customer may hold only so many pending orders, and a cart only so many lines; both
//! are checked under the user's row lock (pending orders against a bound kept on that row,
//! counted when the bound reaches the cap: see [`crate::orders::admission`]). A shared lock does not
//! serialise two checks: two orders of one customer would each hold it, each find nine
//! pending orders, and both place a tenth. An exclusive lock makes one customer's order
//! placements (and cart changes) take turns, while different customers never wait on each
//! other. The mode is chosen up front, before the idempotency key: the key's insert takes
//! the caller's row shared through its foreign key, and two requests that each hold a
//! shared lock and then ask for the exclusive one wait for each other forever (see
//! [`lock_parties`]).
//!
//! # No locks on gaps
//!
//! Under repeatable read, a locking read or a delete that finds no row locks the gap where
//! the row would be, and a range read through a secondary index locks the gaps around what
//! it finds; every insert into such a gap waits. Neighbouring users' first idempotency keys
//! would queue on each other, or deadlock when two requests hold the same gap and both
//! insert. So an idempotency key is claimed by inserting it (a duplicate locks the existing
//! row), never by looking for it first; and the deletions that lock many rows (a user's
//! orders, a product's cart lines) read which rows they are, then lock them by primary key.
//!
//! The tests in `tools/tests/deadlocks.rs` race the paths that meet on the same rows and
//! check that none of them needs the retry in [`platform::db::transaction`]. The retry
//! remains as a safety net for what they cannot force, such as a cart line added in the
//! instant between a product deletion's read of its cart lines and the product's removal.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{MySql, QueryBuilder};

use crate::error::{Error, Result};
use crate::events::{self, EventType};
use crate::products::{self, Product, ProductPatch};
pub(crate) use crate::sql::push_ids;
use crate::variants::{self, Variant, VariantPatch};
use platform::db::Tx;

/// Level 1: the user row, shared. Returns whether the user exists; while the transaction
/// lasts, the account cannot be deleted under it.
pub async fn lock_user_shared(tx: &mut Tx<'static>, user_id: u64) -> Result<bool, sqlx::Error> {
    let found = sqlx::query_scalar!(
        "SELECT id FROM users WHERE id = ? LOCK IN SHARE MODE",
        user_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Level 1: the user row, exclusive (a new order or cart line is counted under it; account
/// deletion). Returns whether the user exists.
pub async fn lock_user_exclusive(tx: &mut Tx<'static>, user_id: u64) -> Result<bool, sqlx::Error> {
    let found = sqlx::query_scalar!("SELECT id FROM users WHERE id = ? FOR UPDATE", user_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.is_some())
}

/// Level 1 for a request by `caller` for `owner` (the owner of a new order, locked
/// exclusively), before its idempotency key: both rows in ascending id order, the caller's
/// shared unless it is the owner. Returns whether the caller's row exists.
pub async fn lock_parties(
    tx: &mut Tx<'static>,
    caller: u64,
    owner: Option<u64>,
) -> Result<bool, sqlx::Error> {
    let mut rows = vec![(caller, owner == Some(caller))];
    if let Some(owner) = owner.filter(|owner| *owner != caller) {
        rows.push((owner, true));
    }
    rows.sort_unstable();
    let mut caller_exists = false;
    for (id, exclusive) in rows {
        let found = if exclusive {
            lock_user_exclusive(tx, id).await?
        } else {
            lock_user_shared(tx, id).await?
        };
        if id == caller {
            caller_exists = found;
        }
    }
    Ok(caller_exists)
}

/// Units to add to (or take from) each variant, kept sorted by variant id so that the
/// updates lock variant rows in the global order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Movements(BTreeMap<u64, u64>);

impl Movements {
    pub fn add(&mut self, variant_id: u64, quantity: u64) {
        *self.0.entry(variant_id).or_default() += quantity;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().map(|(id, quantity)| (*id, *quantity))
    }

    /// Each variant's units as a change added to its stock, for [`record_crossings`].
    pub fn signed(&self) -> Vec<(u64, i64)> {
        self.iter()
            .map(|(id, quantity)| (id, i64::try_from(quantity).unwrap_or(i64::MAX)))
            .collect()
    }
}

/// What a set of orders holds, by variant. Lines of deleted variants (and products) hold
/// nothing: there is no shelf to return them to.
pub async fn held_by(tx: &mut Tx<'static>, order_ids: &[u64]) -> Result<Movements, sqlx::Error> {
    let mut held = Movements::default();
    if order_ids.is_empty() {
        return Ok(held);
    }
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT variant_id, CAST(SUM(quantity) AS UNSIGNED) FROM order_items \
         WHERE variant_id IS NOT NULL AND order_id IN (",
    );
    push_ids(&mut qb, order_ids);
    qb.push(" GROUP BY variant_id");
    let rows: Vec<(u64, u64)> = qb.build_query_as().fetch_all(&mut **tx).await?;
    for (variant_id, quantity) in rows {
        held.add(variant_id, quantity);
    }
    Ok(held)
}

/// Puts the units back on the shelf, variant rows locked in ascending id order, and records
/// the variants that were out of stock and no longer are. A variant deleted meanwhile
/// takes nothing back.
pub async fn put_back(tx: &mut Tx<'static>, movements: &Movements) -> Result<()> {
    for (variant_id, quantity) in movements.iter() {
        sqlx::query!(
            "UPDATE variants SET stock = stock + ?, updated_at = CURRENT_TIMESTAMP(6) WHERE id = ?",
            quantity,
            variant_id
        )
        .execute(&mut **tx)
        .await?;
    }
    record_crossings(tx, &movements.signed()).await
}

/// `PUT /products/{id}`: the patch and, when it sets a one-variant product's stock, the
/// crossing of zero it makes, in one transaction.
pub async fn update_product(
    pool: &sqlx::MySqlPool,
    id: u64,
    patch: ProductPatch,
) -> Result<Product> {
    platform::db::transaction(pool, |tx| {
        let patch = patch.clone();
        Box::pin(async move {
            let moved = products::update_in(tx, id, &patch).await?;
            record_crossings(tx, moved.as_slice()).await?;
            products::get_in(tx, id).await
        })
    })
    .await
}

/// `PUT /variants/{id}`: the patch and, when it sets the stock, the crossing of zero it
/// makes, in one transaction.
pub async fn update_variant(
    pool: &sqlx::MySqlPool,
    id: u64,
    patch: VariantPatch,
) -> Result<Variant> {
    let product_id = variants::product_of(pool, id).await?;
    platform::db::transaction(pool, |tx| {
        let patch = patch.clone();
        Box::pin(async move {
            let moved = variants::update_in(tx, product_id, id, patch).await?;
            record_crossings(tx, moved.as_slice()).await?;
            Ok::<_, Error>(())
        })
    })
    .await?;
    variants::get(pool, id).await
}

/// A product's stock event: the product as the API shows it, and the variant that moved.
#[derive(Serialize)]
struct StockEvent<'a> {
    #[serde(flatten)]
    product: &'a Product,
    variant_id: u64,
}

/// Records `product.out_of_stock` or `product.back_in_stock` for each variant whose stock
/// this transaction has just moved across zero: the one place where a stock level becomes
/// an event, whatever moved it (an order, a cancel, an expiry, an account or order
/// deletion, an admin's edit). `moved` gives each variant's change, units added (taking is
/// negative); its rows are already locked by the change, so the level read here is the one
/// that commits. Variants in ascending id order, so events follow the lock order.
pub async fn record_crossings(tx: &mut Tx<'static>, moved: &[(u64, i64)]) -> Result<()> {
    let moved: BTreeMap<u64, i64> = moved
        .iter()
        .filter(|(_, change)| *change != 0)
        .copied()
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let ids: Vec<u64> = moved.keys().copied().collect();
    let mut qb: QueryBuilder<MySql> =
        QueryBuilder::new("SELECT id, product_id, stock FROM variants WHERE id IN (");
    push_ids(&mut qb, &ids);
    qb.push(" ORDER BY id");
    let levels: Vec<Level> = qb.build_query_as().fetch_all(&mut **tx).await?;
    record_crossings_at(tx, &moved, &levels).await
}

/// A variant's level as its change left it: `(variant id, product id, stock)`.
pub type Level = (u64, u64, u32);

/// [`record_crossings`] for levels the change already read back under its locks.
pub async fn record_crossings_at(
    tx: &mut Tx<'static>,
    moved: &BTreeMap<u64, i64>,
    levels: &[Level],
) -> Result<()> {
    for &(variant_id, product_id, after) in levels {
        let Some(change) = moved.get(&variant_id) else {
            continue;
        };
        let after = i64::from(after);
        let before = after - change;
        let kind = match (before > 0, after > 0) {
            (true, false) => EventType::ProductOutOfStock,
            (false, true) => EventType::ProductBackInStock,
            _ => continue,
        };
        let product = products::get_in(tx, product_id).await?;
        let event = StockEvent {
            product: &product,
            variant_id,
        };
        events::record(tx, kind, &event).await?;
    }
    Ok(())
}
