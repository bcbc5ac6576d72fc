//! What order lines name, resolved to variants with their names, prices and stock as of
//! now: a product stands for its only variant; one with several is the request's fault.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{MySql, QueryBuilder};

use super::model::{Item, MAX_QUANTITY, WantedLine};
use crate::error::{Conflict, Error, FieldError, Result};
use crate::money::Money;
use crate::stock;
use crate::variants::{Options, Sku};
use platform::db::Tx;

/// A line resolved to one variant: what stock it takes and how the request named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StockLine {
    pub variant_id: u64,
    pub quantity: u32,
    /// The first name the request used for it, for refusals.
    pub named: Item,
}

/// A variant as an order line records it.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub product_id: u64,
    pub name: String,
    pub sku: Sku,
    pub options: Options,
    pub price: Money,
    pub stock: u32,
}

type Row = (
    u64,
    u64,
    String,
    Decimal,
    u32,
    String,
    String,
    DateTime<Utc>,
);

/// Resolves `lines` by a plain read (no variant row is locked: the stock is taken last).
/// Unknown products or variants, and products with several variants, are invalid input;
/// lines that come to the same variant are merged. Returns the lines in variant-id order
/// (the order their rows are locked in), each variant's offer, and the database's clock.
pub(crate) async fn resolve(
    tx: &mut Tx<'static>,
    lines: &[WantedLine],
) -> Result<(Vec<StockLine>, BTreeMap<u64, Offer>, DateTime<Utc>)> {
    let ids = |want_product: bool| -> Vec<u64> {
        lines
            .iter()
            .filter_map(|line| match line.item {
                Item::Product(id) if want_product => Some(id),
                Item::Variant(id) if !want_product => Some(id),
                _ => None,
            })
            .collect()
    };
    let (variant_ids, product_ids) = (ids(false), ids(true));
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT v.id, v.product_id, p.name, v.price, v.stock, CAST(v.sku AS CHAR), \
         CAST(v.options AS CHAR), UTC_TIMESTAMP(6) \
         FROM variants v JOIN products p ON p.id = v.product_id WHERE ",
    );
    // Only the conditions the lines need: a constant `1 = 0 OR` in front of them cost the
    // flash sale's read about 15 of its 190 µs (the slow query log).
    let mut conditions = 0;
    for (column, ids) in [("v.id", &variant_ids), ("v.product_id", &product_ids)] {
        if !ids.is_empty() {
            qb.push(if conditions == 0 { "" } else { " OR " });
            qb.push(column).push(" IN (");
            stock::push_ids(&mut qb, ids);
            conditions += 1;
        }
    }
    if conditions == 0 {
        qb.push("FALSE");
    }
    let rows: Vec<Row> = qb.build_query_as().fetch_all(&mut **tx).await?;
    let now = rows.first().map_or_else(Utc::now, |row| row.7);
    let mut offers = BTreeMap::new();
    let mut of_product: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (id, product_id, name, price, stock, sku, options, _) in rows {
        of_product.entry(product_id).or_default().push(id);
        offers.insert(
            id,
            Offer {
                product_id,
                name,
                sku: Sku::from_db(sku),
                options: Options::from_db(&options),
                price: Money::from_db(price),
                stock,
            },
        );
    }

    let mut errors = Vec::new();
    let mut merged: BTreeMap<u64, StockLine> = BTreeMap::new();
    for line in lines {
        let variant_id = match line.item {
            Item::Variant(id) if offers.contains_key(&id) => id,
            Item::Product(id) => match of_product.get(&id).map(Vec::as_slice) {
                Some([only]) => *only,
                Some(several) if !several.is_empty() => {
                    errors.push(FieldError::new(
                        format!("items[{}]", line.index),
                        format!(
                            "product {id} has {} variants: name one by variant_id",
                            several.len()
                        ),
                    ));
                    continue;
                }
                _ => {
                    errors.push(unknown(line.named));
                    continue;
                }
            },
            Item::Variant(_) => {
                errors.push(unknown(line.named));
                continue;
            }
        };
        merged
            .entry(variant_id)
            .and_modify(|merged| merged.quantity = merged.quantity.saturating_add(line.quantity))
            .or_insert(StockLine {
                variant_id,
                quantity: line.quantity,
                named: line.named,
            });
    }
    for line in merged.values() {
        if line.quantity > MAX_QUANTITY {
            errors.push(FieldError::new(
                "items",
                format!(
                    "{} is ordered {} times; at most {MAX_QUANTITY}",
                    line.named, line.quantity
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let lines: Vec<StockLine> = merged.into_values().collect();
    if let Some(refusal) = refusal(&lines, |id| offers.get(&id).map(|offer| offer.stock)) {
        return Err(refusal);
    }
    Ok((lines, offers, now))
}

fn unknown(item: Item) -> FieldError {
    FieldError::new("items", format!("{item} does not exist"))
}

/// The refusal for `lines` given each variant's stock (`None`: no such variant any more):
/// unknown ones first (invalid input), then every short one (a conflict).
pub(crate) fn refusal(lines: &[StockLine], stock_of: impl Fn(u64) -> Option<u32>) -> Option<Error> {
    let unknown: Vec<FieldError> = lines
        .iter()
        .filter(|line| stock_of(line.variant_id).is_none())
        .map(|line| unknown(line.named))
        .collect();
    if !unknown.is_empty() {
        return Some(Error::Invalid(unknown));
    }
    let short: Vec<(&StockLine, u32)> = lines
        .iter()
        .filter_map(|line| {
            let stock = stock_of(line.variant_id)?;
            (stock < line.quantity).then_some((line, stock))
        })
        .collect();
    if short.is_empty() {
        return None;
    }
    let all_products = short
        .iter()
        .all(|(line, _)| matches!(line.named, Item::Product(_)));
    let named = if all_products {
        let ids: Vec<String> = short
            .iter()
            .filter_map(|(line, _)| match line.named {
                Item::Product(id) => Some(id.to_string()),
                Item::Variant(_) => None,
            })
            .collect();
        format!("products {}", ids.join(", "))
    } else {
        let items: Vec<String> = short
            .iter()
            .map(|(line, _)| line.named.to_string())
            .collect();
        items.join(", ")
    };
    Some(Error::Conflict {
        kind: Conflict::InsufficientStock,
        detail: format!("Not enough stock for {named}."),
        errors: short
            .iter()
            .map(|(line, stock)| {
                FieldError::new(
                    "items",
                    format!(
                        "{} has {stock} in stock, {} requested",
                        line.named, line.quantity
                    ),
                )
            })
            .collect(),
    })
}
