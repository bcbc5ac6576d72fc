//! Placing an order: prices as of now, stock taken in the same transaction, as its last
//! statement.
//!
//! When every buyer wants the same variant (a flash sale), every order queues on that
//! variant's row lock, so the time a lock is held is what bounds the shop's throughput.
//! Placing an order therefore does everything that needs no variant lock first (checking
//! the lines, reading names and prices, writing the order, its lines and its history) and
//! takes the stock last, in one guarded statement for all lines, right before the commit.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Serialize, Serializer};
use sqlx::{Executor, MySql, MySqlPool, QueryBuilder, Row};

use super::admission;
use super::history::{self, Actor};
use super::model::{Order, OrderLine, WantedLine};
use super::resolve::{StockLine, refusal, resolve};
use super::status::Status;
use crate::addresses::{PostalAddress, Shipping};
use crate::caller::{Caller, Claimed};
use crate::discounts::{self, Code};
use crate::error::{Conflict, Error, FieldError, Result};
use crate::events::{self, EventType};
use crate::idempotency::Parties;
use crate::money::Money;
use crate::settings::OrderLimits as Limits;
use crate::stock;
use platform::db::Tx;

/// An order written in a transaction whose stock is not taken yet: [`Placed::take_stock`]
/// must run before the commit, as the transaction's last statement. It reads as the order.
#[derive(Debug, Clone)]
pub struct Placed {
    order: Order,
    /// What the order takes from each variant, in variant-id order.
    lines: Vec<StockLine>,
    /// Whether the lines came from a cart, which is then at fault (a conflict) when they
    /// name a product that no longer exists, rather than the request (invalid input).
    from_cart: bool,
}

impl Placed {
    pub fn order(&self) -> &Order {
        &self.order
    }

    pub(crate) fn blamed_on_cart(mut self) -> Self {
        self.from_cart = true;
        self
    }

    /// Takes every line's stock in one guarded `UPDATE` that locks the variant rows in
    /// ascending id order and cannot take more than is there ([`take`]). Most orders leave
    /// stock and are done with it; one that empties a variant, or finds one short or gone,
    /// reads the levels back under those locks: they say which variants ran out, or name
    /// each line that is short or gone, and then nothing is kept (the caller rolls back).
    pub async fn take_stock(&self, tx: &mut Tx<'static>) -> Result<()> {
        let lines = &self.lines;
        let Some((all_taken, levels)) = take(tx, lines).await? else {
            return Ok(());
        };
        if all_taken {
            return stock::record_crossings_at(tx, &taken(lines), &levels).await;
        }
        let current: BTreeMap<u64, u32> = levels
            .iter()
            .map(|&(variant_id, _, stock)| (variant_id, stock))
            .collect();
        match refusal(lines, |id| current.get(&id).copied()) {
            Some(Error::Invalid(errors)) if self.from_cart => Err(cart_not_orderable(errors)),
            Some(refusal) => Err(refusal),
            // The short line's row is locked by the update that found it short, so it is
            // still short when read back; taking again here could take a line twice.
            None => Err(Error::Internal(
                "stock changed under a variant row lock".into(),
            )),
        }
    }
}

impl Serialize for Placed {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.order.serialize(serializer)
    }
}

/// Who places an order, and for whom.
#[derive(Debug, Clone, Copy)]
pub enum Buyer {
    /// The token's holder, for themselves: the token is confirmed by the lock the order
    /// takes on their row anyway, not by a read of its own.
    Own(Claimed),
    /// A confirmed caller for an account (an admin for a customer, or anyone for themselves
    /// with an idempotency key).
    For { caller: Caller, owner: u64 },
}

impl Buyer {
    /// `POST /orders` by the holder of `claimed`, for `user_id` (themselves when absent).
    /// Naming someone else needs the caller's role, so that token is confirmed first. So is
    /// the token of a request with an idempotency key: a stored answer is replayed before
    /// the order's own lock would confirm it, and a revoked token must not read it.
    pub async fn of(
        pool: &MySqlPool,
        claimed: Claimed,
        user_id: Option<u64>,
        keyed: bool,
    ) -> Result<Self> {
        let owner = user_id.unwrap_or(claimed.id);
        if owner == claimed.id && !keyed {
            return Ok(Self::Own(claimed));
        }
        let caller = claimed.confirm(pool).await?;
        let owner = caller.acting_for(Some(owner))?;
        Ok(Self::For { caller, owner })
    }

    /// Whose rows an idempotency key locks: the caller's, and the new order's owner's.
    pub fn parties(&self) -> Parties {
        let (caller, owner) = match *self {
            Self::Own(claimed) => (claimed.id, claimed.id),
            Self::For { caller, owner } => (caller.id, owner),
        };
        Parties {
            caller,
            owner: Some(owner),
        }
    }
}

/// Writes a pending order inside `tx` that holds its stock for `hold` and ships to `ship`
/// (already resolved by the caller, so a wrong address is refused before anything is
/// written), for an owner the caller has admitted ([`admission::admit`]): resolves each
/// line to a variant, refuses unknown products and variants and products with several
/// variants (invalid input) and short stock (a conflict naming every short line) as far as
/// a plain read can tell, and writes the order, its lines with name, SKU, options and
/// price as of now, and the first entry of its history. No variant row is locked yet: the stock is
/// taken by [`Placed::take_stock`].
pub(crate) async fn prepare(
    tx: &mut Tx<'static>,
    user_id: u64,
    lines: &[WantedLine],
    ship: Option<&PostalAddress>,
    discount: Option<&Code>,
    actor: Actor,
    hold: Duration,
) -> Result<Placed> {
    // The database's clock, read with the variants, dates the order and its history, so
    // the response needs no read-back and expiry compares like with like.
    let (lines, offers, now) = resolve(tx, lines).await?;

    let too_large = || Error::invalid("items", "the order total exceeds 99999999.99");
    let mut subtotal = Money::ZERO;
    let mut items = Vec::with_capacity(lines.len());
    for line in &lines {
        let offer = &offers[&line.variant_id];
        let line_total = offer
            .price
            .checked_mul(line.quantity)
            .ok_or_else(too_large)?;
        subtotal = subtotal.checked_add(line_total).ok_or_else(too_large)?;
        items.push(OrderLine {
            product_id: Some(offer.product_id),
            variant_id: Some(line.variant_id),
            name: offer.name.clone(),
            sku: Some(offer.sku.clone()),
            options: offer.options.clone(),
            unit_price: offer.price,
            quantity: line.quantity,
            line_total,
        });
    }
    let hold = chrono::Duration::from_std(hold)
        .map_err(|_| Error::Internal("the order hold is out of range".into()))?;
    let expires_at = now + hold;
    // The discount row is locked from here to the commit (see `crate::stock`).
    let priced = discounts::price_order(tx, discount, user_id, subtotal, now).await?;
    let (discount_id, discount, total) = (priced.discount_id, priced.discount, priced.total);
    // Nothing to pay: the order is paid as it is placed.
    let status = if total == Money::ZERO {
        Status::Paid
    } else {
        Status::Pending
    };

    let order_id = sqlx::query!(
        "INSERT INTO orders (user_id, status, subtotal, discount_id, discount_code, discount_kind,
                             discount_value, discount_amount, total, expires_at, ship_name,
                             ship_line1, ship_line2, ship_postal_code, ship_city, ship_country,
                             ship_phone, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        user_id,
        status,
        subtotal.amount(),
        discount_id,
        discount.as_ref().map(|d| &d.code),
        discount.as_ref().map(|d| d.kind),
        discount.as_ref().map(|d| d.value.amount),
        discount.as_ref().map(|d| d.amount.amount()),
        total.amount(),
        expires_at,
        ship.map(|a| &a.name),
        ship.map(|a| &a.line1),
        ship.and_then(|a| a.line2.as_ref()),
        ship.map(|a| &a.postal_code),
        ship.map(|a| &a.city),
        ship.map(|a| &a.country),
        ship.and_then(|a| a.phone.as_ref()),
        now,
        now
    )
    .execute(&mut **tx)
    .await?
    .last_insert_id();
    let created = history::begin(tx, order_id, status, now, actor).await?;

    let mut insert: QueryBuilder<MySql> = QueryBuilder::new(
        "INSERT INTO order_items (order_id, product_id, variant_id, product_name, sku, options, \
         unit_price, quantity, line_total) ",
    );
    insert.push_values(&items, |mut row, line| {
        row.push_bind(order_id)
            .push_bind(line.product_id)
            .push_bind(line.variant_id)
            .push_bind(&line.name)
            .push_bind(line.sku.as_ref().map(|sku| sku.as_str().to_owned()))
            .push_bind(line.options.to_db())
            .push_bind(line.unit_price.amount())
            .push_bind(line.quantity)
            .push_bind(line.line_total.amount());
    });
    insert.build().execute(&mut **tx).await?;

    let order = Order {
        id: order_id,
        user_id: Some(user_id),
        status,
        items,
        subtotal,
        discount,
        total,
        amount_paid: Money::ZERO,
        expires_at: (status == Status::Pending).then_some(expires_at),
        shipping_address: ship.cloned(),
        tracking_number: None,
        history: vec![created],
        created_at: now,
        updated_at: now,
    };
    events::record(tx, EventType::OrderCreated, &order).await?;
    if status == Status::Paid {
        // A free order is paid as it is placed: consumers learn both, in that order.
        events::record(tx, EventType::OrderPaid, &order).await?;
    }
    Ok(Placed {
        order,
        lines,
        from_cart: false,
    })
}

/// The lines' quantities as changes to each variant's stock.
fn taken(lines: &[StockLine]) -> BTreeMap<u64, i64> {
    lines
        .iter()
        .map(|line| (line.variant_id, -i64::from(line.quantity)))
        .collect()
}

/// `POST /orders` by `buyer`: admits the owner, locked, against the cap on their pending
/// orders (confirming the token of an order for oneself with the same statement; see
/// [`admission::admit_claimed`]), resolves where the order ships, then writes it. The
/// caller takes the stock last, right before committing. An owner who does not exist is
/// the request's fault (invalid input), unless it is the caller, whose account was deleted
/// or token revoked (`Error::AccountGone`).
pub async fn place(
    tx: &mut Tx<'static>,
    buyer: Buyer,
    lines: &[WantedLine],
    shipping: &Shipping,
    discount: Option<&Code>,
    limits: Limits,
) -> Result<Placed> {
    let (caller, owner) = match buyer {
        Buyer::Own(claimed) => {
            let caller = admission::admit_claimed(tx, claimed, limits.max_pending).await?;
            (caller.ok_or(Error::AccountGone)?, claimed.id)
        }
        Buyer::For { caller, owner } => {
            if !admission::admit(tx, owner, limits.max_pending).await? {
                return Err(Error::invalid("user_id", "does not name an existing user"));
            }
            (caller, owner)
        }
    };
    let ship = shipping.resolve(tx, owner).await?;
    let actor = Actor::of(&caller);
    prepare(
        tx,
        owner,
        lines,
        ship.as_ref(),
        discount,
        actor,
        limits.hold,
    )
    .await
}

/// The cart, not the request, is at fault when it cannot become an order: a conflict.
pub(crate) fn cart_not_orderable(errors: Vec<FieldError>) -> Error {
    Error::Conflict {
        kind: Conflict::CartNotOrderable,
        detail: "The cart cannot be ordered as it is.".into(),
        errors,
    }
}

/// The guarded `UPDATE` for every line, first taking only where a unit is left over: when
/// that takes every line, no variant ran out (or came back) and nothing is read (`None`).
/// Otherwise it is undone and taken down to zero with the rows read back in the same round
/// trip: whether every line was taken, and each variant's level after it (read under the
/// update's lock; a variant that is gone is absent).
///
/// Each statement under these locks is time every flash-sale buyer waits; the read-back
/// cost the database 107 µs per order (the update 177, the savepoint 5; slow query log).
/// Undoing to the savepoint keeps the locks the first update took (under REPEATABLE READ,
/// on every row it examined), so the second locks nothing new, in primary-key order.
///
/// A batch cannot bind parameters: ids and quantities are integers formatted into it.
async fn take(
    tx: &mut Tx<'static>,
    lines: &[StockLine],
) -> Result<Option<(bool, Vec<stock::Level>)>> {
    let ids = lines
        .iter()
        .map(|line| line.variant_id.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let quantities: String = lines
        .iter()
        .map(|line| format!(" WHEN {} THEN {}", line.variant_id, line.quantity))
        .collect();
    let update = |guard: &str| {
        format!(
            "UPDATE variants SET stock = stock - CASE id{quantities} END, \
             updated_at = CURRENT_TIMESTAMP(6) WHERE id IN ({ids}) AND stock {guard} CASE id{quantities} END"
        )
    };
    let leaving_stock = format!("SAVEPOINT take_stock; {}", update(">"));
    let taken = (&mut **tx).execute(sqlx::raw_sql(&leaving_stock)).await?;
    if taken.rows_affected() == lines.len() as u64 {
        return Ok(None);
    }
    let batch = format!(
        "ROLLBACK TO SAVEPOINT take_stock; {}; \
         SELECT id, product_id, stock, ROW_COUNT() FROM variants WHERE id IN ({ids}) ORDER BY id \
         FOR UPDATE",
        update(">=")
    );
    let rows = (&mut **tx).fetch_all(sqlx::raw_sql(&batch)).await?;
    let mut affected = 0;
    let mut levels = Vec::with_capacity(rows.len());
    for row in rows {
        affected = row.try_get::<i64, _>(3)?;
        levels.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    }
    Ok(Some((affected == lines.len() as i64, levels)))
}
