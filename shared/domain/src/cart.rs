//! Carts: one per user, priced at the products' current prices, turned into an order at
//! checkout under the same rules as `POST /orders`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::addresses::{self, PostalAddress, Shipping};
use crate::caller::Caller;
use crate::discounts::Code;
use crate::error::{Conflict, Error, FieldError, Result};
use crate::id::Id;
use crate::money::Money;
use crate::orders::admission::admit;
use crate::orders::create::{Placed, cart_not_orderable};
use crate::orders::history::Actor;
use crate::orders::model::{Item, MAX_LINES, MAX_QUANTITY, WantedLine};
use crate::settings::OrderLimits as Limits;
use crate::validate::{Checks, Validate, whole};
use crate::variants::{Options, Sku};
use platform::db::{self, Tx};

#[derive(Debug, Clone, Serialize)]
pub struct CartLine {
    pub product_id: u64,
    pub variant_id: u64,
    pub name: String,
    pub sku: Sku,
    pub options: Options,
    pub unit_price: Money,
    pub quantity: u32,
    pub line_total: Money,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cart {
    pub user_id: u64,
    pub items: Vec<CartLine>,
    pub total: Money,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    #[serde(deserialize_with = "whole")]
    pub quantity: u32,
}

impl Validate for SetQuantity {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Checks::new()
            .range("quantity", self.quantity, 1, MAX_QUANTITY)
            .finish()
    }
}

/// Checkout takes no body, an empty object, or where the order ships: one of the owner's
/// saved addresses or an address given inline. Absent fields stay out of the idempotency
/// fingerprint, so a retry of a request made before addresses existed still matches.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<PostalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_code: Option<Code>,
}

impl Checkout {
    pub fn shipping(&self) -> Shipping {
        Shipping::of(
            self.shipping_address_id.map(Id::get),
            self.shipping_address.as_ref(),
        )
    }
}

impl Validate for Checkout {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        addresses::check_choice(
            &mut checks,
            self.shipping_address_id.map(Id::get),
            self.shipping_address.as_ref(),
        );
        checks.finish()
    }
}

pub async fn get(pool: &MySqlPool, user_id: u64) -> Result<Cart> {
    crate::users::require_existing_user(pool, user_id).await?;
    let rows = sqlx::query!(
        "SELECT c.product_id, c.variant_id, p.name, v.sku, v.options, v.price, c.quantity
         FROM cart_items c JOIN variants v ON v.id = c.variant_id
              JOIN products p ON p.id = c.product_id
         WHERE c.user_id = ? ORDER BY c.created_at, c.variant_id",
        user_id
    )
    .fetch_all(pool)
    .await?;
    let mut total = Decimal::ZERO;
    let items = rows
        .into_iter()
        .map(|row| {
            let line_total = row.price * Decimal::from(row.quantity);
            total += line_total;
            CartLine {
                product_id: row.product_id,
                variant_id: row.variant_id,
                name: row.name,
                sku: Sku::from_db(row.sku),
                options: Options::from_db(&row.options),
                unit_price: Money::from_db(row.price),
                quantity: row.quantity,
                line_total: Money::from_db(line_total),
            }
        })
        .collect();
    Ok(Cart {
        user_id,
        items,
        total: Money::from_db(total),
    })
}

/// Sets the quantity of a line naming a variant, or a product with exactly one (a conflict
/// for a product with several). An unknown product or variant is not found; more than the
/// stock is a conflict; a new line in a cart that already holds [`MAX_LINES`] is a
/// conflict. The user row is locked (exclusive) while the lines are counted, so parallel
/// additions cannot pass the limit together, and so that a user deleted meanwhile is not
/// found rather than a broken reference.
pub async fn set_line(pool: &MySqlPool, user_id: u64, item: Item, quantity: u32) -> Result<Cart> {
    db::transaction(pool, |tx| {
        Box::pin(async move { set_line_in(tx, user_id, item, quantity).await })
    })
    .await?;
    get(pool, user_id).await
}

async fn set_line_in(tx: &mut Tx<'static>, user_id: u64, item: Item, quantity: u32) -> Result<()> {
    if !crate::stock::lock_user_exclusive(tx, user_id).await? {
        return Err(Error::NotFound("user"));
    }
    let offer = offer(tx, item).await?;
    let (variant_id, stock) = (offer.id, offer.stock);
    if quantity > stock {
        return Err(Error::Conflict {
            kind: Conflict::InsufficientStock,
            detail: format!(
                "{} has {stock} in stock, {quantity} requested.",
                capitalised(item)
            ),
            errors: vec![FieldError::new(
                "quantity",
                format!("must be at most {stock}"),
            )],
        });
    }
    let others = sqlx::query!(
        r#"SELECT COUNT(*) AS "lines!: i64",
                  CAST(COALESCE(SUM(p.price * c.quantity), 0) AS DECIMAL(20, 2)) AS "total!: Decimal"
           FROM cart_items c JOIN variants p ON p.id = c.variant_id
           WHERE c.user_id = ? AND c.variant_id <> ?"#,
        user_id,
        variant_id
    )
    .fetch_one(&mut **tx)
    .await?;
    if others.lines >= MAX_LINES as i64 {
        return Err(Error::conflict(
            Conflict::CartFull,
            format!(
                "A cart holds at most {MAX_LINES} products, as an order does; remove one first."
            ),
        ));
    }
    if others.total + offer.price * Decimal::from(quantity) > crate::money::MAX {
        return Err(Error::Conflict {
            kind: Conflict::CartTotalTooLarge,
            detail: "The cart total would exceed 99999999.99.".into(),
            errors: vec![FieldError::new(
                "quantity",
                "makes the cart total too large",
            )],
        });
    }
    sqlx::query!(
        "INSERT INTO cart_items (user_id, product_id, variant_id, quantity) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), updated_at = CURRENT_TIMESTAMP(6)",
        user_id,
        offer.product_id,
        variant_id,
        quantity
    )
    .execute(&mut **tx)
    .await
    .map_err(|err| {
        // The variant was deleted between the check and the insert (the user is locked).
        if platform::db::is_foreign_key_violation(&err) {
            Error::NotFound(not_found(item))
        } else {
            err.into()
        }
    })?;
    Ok(())
}

/// The variant a cart line for `item` holds: its product, price and stock.
struct Offer {
    id: u64,
    product_id: u64,
    price: Decimal,
    stock: u32,
}

async fn offer(tx: &mut Tx<'static>, item: Item) -> Result<Offer> {
    let (variant_id, product_id) = match item {
        Item::Variant(id) => (Some(id), None),
        Item::Product(id) => (None, Some(id)),
    };
    let rows = sqlx::query_as!(
        Offer,
        "SELECT id, product_id, price, stock FROM variants
         WHERE id = ? OR product_id = ? ORDER BY id LIMIT 2",
        variant_id,
        product_id
    )
    .fetch_all(&mut **tx)
    .await?;
    match (item, rows.len()) {
        (_, 0) => Err(Error::NotFound(not_found(item))),
        (Item::Product(id), 2) => Err(Error::Conflict {
            kind: Conflict::VariantRequired,
            detail: format!(
                "Product {id} has several variants: put one in the cart by its variant_id."
            ),
            errors: vec![FieldError::new("product_id", "has several variants")],
        }),
        _ => rows
            .into_iter()
            .next()
            .ok_or(Error::NotFound(not_found(item))),
    }
}

fn not_found(item: Item) -> &'static str {
    match item {
        Item::Variant(_) => "variant",
        Item::Product(_) => "product",
    }
}

fn capitalised(item: Item) -> String {
    match item {
        Item::Variant(id) => format!("Variant {id}"),
        Item::Product(id) => format!("Product {id}"),
    }
}

/// Removes the line of a variant, or the lines of a product (one for a one-variant
/// product); not found when there is none.
pub async fn remove_line(pool: &MySqlPool, user_id: u64, item: Item) -> Result<()> {
    crate::users::require_existing_user(pool, user_id).await?;
    let removed = match item {
        Item::Product(id) => {
            sqlx::query!(
                "DELETE FROM cart_items WHERE user_id = ? AND product_id = ?",
                user_id,
                id
            )
            .execute(pool)
            .await?
        }
        Item::Variant(id) => {
            sqlx::query!(
                "DELETE FROM cart_items WHERE user_id = ? AND variant_id = ?",
                user_id,
                id
            )
            .execute(pool)
            .await?
        }
    };
    if removed.rows_affected() == 0 {
        return Err(Error::NotFound("cart item"));
    }
    Ok(())
}

pub async fn clear(pool: &MySqlPool, user_id: u64) -> Result<()> {
    crate::users::require_existing_user(pool, user_id).await?;
    sqlx::query!("DELETE FROM cart_items WHERE user_id = ?", user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Turns `user_id`'s cart into an order inside `tx`, for `caller`, and empties it: what
/// checkout answers. The owner is admitted first (locked, their pending orders checked;
/// see [`crate::orders::admission::admit`]), then the cart lines are locked (the lock order of
/// `crate::stock`). Stock is checked again here, since it may have moved since the lines
/// were set. As for `POST /orders`, the caller takes the stock last, right before
/// committing. A cart of more lines than an order may have (one filled before carts were
/// limited) is refused as a conflict, rather than ordered.
pub async fn checkout(
    tx: &mut Tx<'static>,
    caller: &Caller,
    user_id: u64,
    shipping: &Shipping,
    discount: Option<&Code>,
    limits: Limits,
) -> Result<Placed> {
    if !admit(tx, user_id, limits.max_pending).await? {
        return Err(if user_id == caller.id {
            Error::AccountGone
        } else {
            Error::NotFound("user")
        });
    }
    let rows = sqlx::query!(
        "SELECT variant_id, product_id, quantity FROM cart_items WHERE user_id = ?
         ORDER BY variant_id FOR UPDATE",
        user_id
    )
    .fetch_all(&mut **tx)
    .await?;
    let single = one_variant_products(tx, rows.iter().map(|row| row.product_id).collect()).await?;
    // Refusals name a one-variant product's line by its product, as the cart was filled.
    let lines: Vec<WantedLine> = rows
        .into_iter()
        .enumerate()
        .map(|(index, row)| {
            let mut line = WantedLine::new(Item::Variant(row.variant_id), row.quantity, index);
            if single.contains(&row.product_id) {
                line.named = Item::Product(row.product_id);
            }
            line
        })
        .collect();
    if lines.is_empty() {
        return Err(Error::conflict(Conflict::EmptyCart, "The cart is empty."));
    }
    if lines.len() > MAX_LINES {
        return Err(cart_not_orderable(vec![FieldError::new(
            "items",
            format!(
                "the cart has {} lines; an order has at most {MAX_LINES}",
                lines.len()
            ),
        )]));
    }
    // A wrong address is the request's fault (400), not the cart's.
    let ship = shipping.resolve(tx, user_id).await?;
    let actor = Actor::of(caller);
    let placed = crate::orders::create::prepare(
        tx,
        user_id,
        &lines,
        ship.as_ref(),
        discount,
        actor,
        limits.hold,
    )
    .await
    .map_err(|err| match err {
        Error::Invalid(errors) => cart_not_orderable(errors),
        other => other,
    })?
    .blamed_on_cart();
    sqlx::query!("DELETE FROM cart_items WHERE user_id = ?", user_id)
        .execute(&mut **tx)
        .await?;
    Ok(placed)
}

/// Which of `products` have exactly one variant, by a plain read (no variant is locked
/// before the stock is taken).
async fn one_variant_products(
    tx: &mut Tx<'static>,
    mut products: Vec<u64>,
) -> Result<std::collections::BTreeSet<u64>> {
    products.sort_unstable();
    products.dedup();
    if products.is_empty() {
        return Ok(Default::default());
    }
    let mut qb: sqlx::QueryBuilder<sqlx::MySql> =
        sqlx::QueryBuilder::new("SELECT product_id FROM variants WHERE product_id IN (");
    crate::stock::push_ids(&mut qb, &products);
    qb.push(" GROUP BY product_id HAVING COUNT(*) = 1");
    let single: Vec<u64> = qb.build_query_scalar().fetch_all(&mut **tx).await?;
    Ok(single.into_iter().collect())
}
