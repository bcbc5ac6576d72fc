//! Variants' SQL. Every change to a product's variants locks the product row first (level
//! 5 of `crate::stock`, products before variants), so that the lowest price kept on the
//! product and the "at least one variant" rule are decided on locked rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use super::model::{NewVariant, Options, Sku, Variant, VariantPatch, VariantQuery};
use crate::error::{Conflict, Error, Result};
use crate::money::Money;
use crate::page::{Keyset, Page, into_page};
use crate::sql::push_ids;
use platform::db::{self, Tx};

const COLUMNS: &str = "v.id, v.product_id, CAST(v.sku AS CHAR), CAST(v.options AS CHAR), \
     v.price, v.stock, v.created_at, v.updated_at";

type Row = (
    u64,
    u64,
    String,
    String,
    Decimal,
    u32,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn from_row((id, product_id, sku, options, price, stock, created_at, updated_at): Row) -> Variant {
    Variant {
        id,
        product_id,
        sku: Sku::from_db(sku),
        options: Options::from_db(&options),
        price: Money::from_db(price),
        stock,
        created_at,
        updated_at,
    }
}

/// The variants of each product, oldest first, in one query.
pub(crate) async fn of_products(
    conn: &mut MySqlConnection,
    product_ids: &[u64],
) -> Result<BTreeMap<u64, Vec<Variant>>> {
    let mut by_product: BTreeMap<u64, Vec<Variant>> = BTreeMap::new();
    if product_ids.is_empty() {
        return Ok(by_product);
    }
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new("SELECT ");
    qb.push(COLUMNS)
        .push(" FROM variants v WHERE v.product_id IN (");
    push_ids(&mut qb, product_ids);
    qb.push(" ORDER BY v.product_id, v.created_at, v.id");
    let rows: Vec<Row> = qb.build_query_as().fetch_all(&mut *conn).await?;
    for row in rows {
        let variant = from_row(row);
        by_product
            .entry(variant.product_id)
            .or_default()
            .push(variant);
    }
    Ok(by_product)
}

async fn read(conn: &mut MySqlConnection, id: u64) -> Result<Variant> {
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new("SELECT ");
    qb.push(COLUMNS)
        .push(" FROM variants v WHERE v.id = ")
        .push_bind(id);
    let row: Option<Row> = qb.build_query_as().fetch_optional(&mut *conn).await?;
    row.map(from_row).ok_or(Error::NotFound("variant"))
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Variant> {
    let mut conn = pool.acquire().await?;
    read(&mut conn, id).await
}

/// A product's variants, oldest first; not found for an unknown product.
pub async fn list(
    pool: &MySqlPool,
    product_id: u64,
    query: &VariantQuery,
) -> Result<Page<Variant>> {
    let found = sqlx::query_scalar!("SELECT id FROM products WHERE id = ?", product_id)
        .fetch_optional(pool)
        .await?;
    if found.is_none() {
        return Err(Error::NotFound("product"));
    }
    let order = Keyset {
        column: "v.created_at",
        id_column: "v.id",
        descending: false,
    };
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new("SELECT ");
    qb.push(COLUMNS)
        .push(" FROM variants v WHERE v.product_id = ")
        .push_bind(product_id);
    order.push_time_cursor(&mut qb, "variants", query.cursor.as_deref())?;
    order.push_order_and_limit(&mut qb, query.limit);
    let rows: Vec<Row> = qb.build_query_as().fetch_all(pool).await?;
    let variants = rows.into_iter().map(from_row).collect();
    Ok(into_page(
        variants,
        query.limit,
        "variants",
        |v: &Variant| (crate::time::cursor_value(v.created_at), v.id),
    ))
}

/// Level 5: the product row, exclusive. Whether it exists.
async fn lock_product(tx: &mut Tx<'static>, product_id: u64) -> Result<bool> {
    let found = sqlx::query_scalar!(
        "SELECT id FROM products WHERE id = ? FOR UPDATE",
        product_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// The product's `price` is its lowest variant price; run after any variant change, with
/// the product row locked.
async fn refresh_price(tx: &mut Tx<'static>, product_id: u64) -> Result<()> {
    sqlx::query!(
        "UPDATE products SET price = (SELECT MIN(price) FROM variants WHERE product_id = ?),
                updated_at = CURRENT_TIMESTAMP(6)
         WHERE id = ?",
        product_id,
        product_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A duplicate SKU, or options another variant of the product already has: a conflict.
fn duplicate(err: sqlx::Error) -> Error {
    if !db::is_unique_violation(&err) {
        return err.into();
    }
    if err.to_string().contains("variants_sku_uq") {
        Error::Conflict {
            kind: Conflict::DuplicateSku,
            detail: "Another variant already has this SKU.".into(),
            errors: vec![crate::error::FieldError::new("sku", "is already taken")],
        }
    } else {
        Error::Conflict {
            kind: Conflict::DuplicateOptions,
            detail: "Another variant of this product already has these options.".into(),
            errors: vec![crate::error::FieldError::new(
                "options",
                "are already another variant's",
            )],
        }
    }
}

/// The default variant of a product just inserted in `tx`: its price and stock, options
/// `{}`, and the SKU given or else one made from the product id (with a suffix in the
/// unlikely case an admin already chose that one).
pub(crate) async fn create_default(
    tx: &mut Tx<'static>,
    product_id: u64,
    sku: Option<&Sku>,
    price: Money,
    stock_units: u32,
) -> Result<()> {
    for attempt in 0..5u32 {
        let chosen = match (sku, attempt) {
            (Some(sku), _) => sku.as_str().to_owned(),
            (None, 0) => format!("P{product_id}"),
            (None, n) => format!("P{product_id}-{n}"),
        };
        let inserted = sqlx::query!(
            "INSERT INTO variants (product_id, sku, options, price, stock) VALUES (?, ?, '{}', ?, ?)",
            product_id,
            chosen,
            price.amount(),
            stock_units
        )
        .execute(&mut **tx)
        .await;
        match inserted {
            Ok(_) => return Ok(()),
            Err(err) if sku.is_none() && db::is_unique_violation(&err) => continue,
            Err(err) => return Err(duplicate(err)),
        }
    }
    Err(Error::Internal("no free SKU for a default variant".into()))
}

/// Sets price and stock of a product's only variant, the product row locked by the caller;
/// a product with several variants refuses, naming each field given (invalid input).
/// Returns the stock the variant gained or lost (see [`write_patch`]).
pub(crate) async fn set_only(
    tx: &mut Tx<'static>,
    product_id: u64,
    price: Option<Money>,
    stock_units: Option<u32>,
) -> Result<Option<(u64, i64)>> {
    let ids = sqlx::query_scalar!(
        "SELECT id FROM variants WHERE product_id = ? ORDER BY id FOR UPDATE",
        product_id
    )
    .fetch_all(&mut **tx)
    .await?;
    if ids.len() != 1 {
        let message = "this product has several variants: change the variant instead";
        let mut errors = Vec::new();
        if price.is_some() {
            errors.push(crate::error::FieldError::new("price", message));
        }
        if stock_units.is_some() {
            errors.push(crate::error::FieldError::new("stock", message));
        }
        return Err(Error::Invalid(errors));
    }
    let patch = VariantPatch {
        price,
        stock: stock_units,
        ..VariantPatch::default()
    };
    let moved = write_patch(tx, ids[0], patch).await?;
    refresh_price(tx, product_id).await?;
    Ok(moved)
}

/// Writes the patch to variant `id`, whose row the caller has locked. When it sets the
/// stock, returns the units it added (negative: taken), for `crate::stock` to record a
/// crossing of zero.
async fn write_patch(
    tx: &mut Tx<'static>,
    id: u64,
    patch: VariantPatch,
) -> Result<Option<(u64, i64)>> {
    let before = match patch.stock {
        Some(_) => Some(
            sqlx::query_scalar!("SELECT stock FROM variants WHERE id = ?", id)
                .fetch_one(&mut **tx)
                .await?,
        ),
        None => None,
    };
    let after = patch.stock;
    let mut qb: QueryBuilder<MySql> =
        QueryBuilder::new("UPDATE variants SET updated_at = CURRENT_TIMESTAMP(6)");
    if let Some(sku) = patch.sku {
        qb.push(", sku = ").push_bind(sku.as_str().to_owned());
    }
    if let Some(options) = patch.options {
        qb.push(", options = ").push_bind(options.to_db());
    }
    if let Some(price) = patch.price {
        qb.push(", price = ").push_bind(price.amount());
    }
    if let Some(stock) = patch.stock {
        qb.push(", stock = ").push_bind(stock);
    }
    qb.push(" WHERE id = ").push_bind(id);
    qb.build().execute(&mut **tx).await.map_err(duplicate)?;
    Ok(before
        .zip(after)
        .map(|(before, after)| (id, i64::from(after) - i64::from(before))))
}

pub async fn create(pool: &MySqlPool, product_id: u64, input: NewVariant) -> Result<Variant> {
    let id = db::transaction(pool, |tx| {
        let input = input.clone();
        Box::pin(async move {
            if !lock_product(tx, product_id).await? {
                return Err(Error::NotFound("product"));
            }
            let id = sqlx::query!(
                "INSERT INTO variants (product_id, sku, options, price, stock) VALUES (?, ?, ?, ?, ?)",
                product_id,
                input.sku.as_str(),
                input.options.to_db(),
                input.price.amount(),
                input.stock
            )
            .execute(&mut **tx)
            .await
            .map_err(duplicate)?
            .last_insert_id();
            refresh_price(tx, product_id).await?;
            Ok::<_, Error>(id)
        })
    })
    .await?;
    get(pool, id).await
}

/// The product a variant belongs to, by a plain read: the caller then locks the product
/// and reads the variant again under it.
pub(crate) async fn product_of(pool: &MySqlPool, id: u64) -> Result<u64> {
    sqlx::query_scalar!("SELECT product_id FROM variants WHERE id = ?", id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound("variant"))
}

/// Level 5 for a change to variant `id` of `product_id`: the product row, then the
/// variant's, each exclusive; whether the variant is still the product's.
async fn lock_variant(tx: &mut Tx<'static>, product_id: u64, id: u64) -> Result<bool> {
    lock_product(tx, product_id).await?;
    let found = sqlx::query_scalar!(
        "SELECT id FROM variants WHERE id = ? AND product_id = ? FOR UPDATE",
        id,
        product_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// The patch to variant `id` of `product_id`, inside `tx` (level 5: the product, then the
/// variant). Returns the stock it gained or lost, for `crate::stock::update_variant`,
/// which records it.
pub async fn update_in(
    tx: &mut Tx<'static>,
    product_id: u64,
    id: u64,
    patch: VariantPatch,
) -> Result<Option<(u64, i64)>> {
    if !lock_variant(tx, product_id, id).await? {
        return Err(Error::NotFound("variant"));
    }
    let moved = write_patch(tx, id, patch).await?;
    refresh_price(tx, product_id).await?;
    Ok(moved)
}

/// Deletes a variant: out of every cart, unlinked from past order lines (which keep name,
/// SKU, options and price as bought), in the order a product's deletion follows (cart
/// lines, order lines, then the product and its variant). A product's last variant stays: a
/// conflict.
pub async fn delete(pool: &MySqlPool, id: u64) -> Result<()> {
    let product_id = product_of(pool, id).await?;
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let holders =
                sqlx::query_scalar!("SELECT user_id FROM cart_items WHERE variant_id = ?", id)
                    .fetch_all(&mut **tx)
                    .await?;
            for users in holders.chunks(1000) {
                let mut delete: QueryBuilder<MySql> = QueryBuilder::new(
                    "DELETE c FROM cart_items AS c FORCE INDEX (PRIMARY) WHERE c.variant_id = ",
                );
                delete.push_bind(id).push(" AND c.user_id IN (");
                push_ids(&mut delete, users);
                delete.build().execute(&mut **tx).await?;
            }
            sqlx::query!(
                "UPDATE order_items SET variant_id = NULL WHERE variant_id = ?",
                id
            )
            .execute(&mut **tx)
            .await?;
            if !lock_variant(tx, product_id, id).await? {
                return Err(Error::NotFound("variant"));
            }
            let others = sqlx::query_scalar!(
                "SELECT COUNT(*) FROM variants WHERE product_id = ? AND id <> ?",
                product_id,
                id
            )
            .fetch_one(&mut **tx)
            .await?;
            if others == 0 {
                return Err(Error::conflict(
                    Conflict::LastVariant,
                    "A product keeps at least one variant; delete the product instead.",
                ));
            }
            sqlx::query!("DELETE FROM variants WHERE id = ?", id)
                .execute(&mut **tx)
                .await?;
            refresh_price(tx, product_id).await
        })
    })
    .await
}
