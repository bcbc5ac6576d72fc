//! What an order is made of, as the API shows it and as requests describe it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::history::HistoryEntry;
use super::status::Status;
use crate::addresses::{self, PostalAddress, Shipping};
use crate::discounts::{Applied, Code};
use crate::error::FieldError;
use crate::id::Id;
use crate::money::Money;
use crate::page::Limit;
use crate::time::timestamp;
use crate::validate::{Checks, Validate, whole};
use crate::variants::{Options, Sku};

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: u32 = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    /// `null` once the product has been deleted; name and price stay as bought.
    pub product_id: Option<u64>,
    /// `null` once the variant (or its product) has been deleted.
    pub variant_id: Option<u64>,
    pub name: String,
    /// The variant's SKU and options as bought; no SKU for lines of products deleted
    /// before variants existed.
    pub sku: Option<Sku>,
    pub options: Options,
    pub unit_price: Money,
    pub quantity: u32,
    pub line_total: Money,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: u64,
    /// `null` once its customer deleted their account: the order stays, anonymised, as a
    /// record of the money and stock it moved.
    pub user_id: Option<u64>,
    pub status: Status,
    pub items: Vec<OrderLine>,
    /// The sum of the lines.
    pub subtotal: Money,
    /// What a discount code took off, as it was when the order used it.
    pub discount: Option<Applied>,
    /// `subtotal` less the discount: what is paid.
    pub total: Money,
    pub amount_paid: Money,
    /// When a pending order's stock hold ends; `null` once the order has left `pending`.
    #[serde(serialize_with = "crate::time::optional_timestamp")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The order's own copy of where it ships; `null` for orders that ship nothing.
    pub shipping_address: Option<PostalAddress>,
    pub tracking_number: Option<String>,
    /// Every status the order entered, oldest first, creation included.
    pub history: Vec<HistoryEntry>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// An order in a list or a user's history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OrderSummary {
    pub id: u64,
    // MariaDB labels ENUM columns in a way the derived decoder refuses; go through text.
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub total: Money,
    pub amount_paid: Money,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

/// A line of `POST /orders`: a variant, or a product that has exactly one. Absent ids stay
/// out of the idempotency fingerprint, so a retry of a request made before variants
/// existed still matches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<Id>,
    #[serde(deserialize_with = "whole")]
    pub quantity: u32,
}

impl LineRequest {
    /// What the line names, if it names exactly one thing.
    fn item(&self) -> Option<Item> {
        match (self.product_id, self.variant_id) {
            (Some(product), None) => Some(Item::Product(product.get())),
            (None, Some(variant)) => Some(Item::Variant(variant.get())),
            _ => None,
        }
    }
}

/// What an order or cart line names. A product stands for its only variant, found in the
/// transaction that places the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    Variant(u64),
    Product(u64),
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Variant(id) => write!(f, "variant {id}"),
            Self::Product(id) => write!(f, "product {id}"),
        }
    }
}

/// A line as asked for: what it names, how many, and where it was asked (its index in
/// the request or the cart) and what refusals call it, so that they point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedLine {
    pub item: Item,
    pub quantity: u32,
    pub index: usize,
    /// The item itself, except for a cart line of a one-variant product: the product.
    pub named: Item,
}

impl WantedLine {
    pub fn new(item: Item, quantity: u32, index: usize) -> Self {
        Self {
            item,
            quantity,
            index,
            named: item,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[serde(default)]
    pub user_id: Option<Id>,
    pub items: Vec<LineRequest>,
    /// One of the owner's saved addresses...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address_id: Option<Id>,
    /// ...or an address given with the order. Left out of the idempotency fingerprint when
    /// absent, so requests made before addresses existed keep their fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<PostalAddress>,
    /// Left out of the idempotency fingerprint when absent, as the address is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_code: Option<Code>,
}

impl NewOrder {
    pub fn shipping(&self) -> Shipping {
        Shipping::of(
            self.shipping_address_id.map(Id::get),
            self.shipping_address.as_ref(),
        )
    }
}

impl Validate for NewOrder {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        checks.check(
            (1..=MAX_LINES).contains(&self.items.len()),
            "items",
            format!("must have 1 to {MAX_LINES} lines"),
        );
        for (i, line) in self.items.iter().enumerate() {
            match (line.product_id, line.variant_id) {
                (Some(_), Some(_)) => {
                    checks.check(
                        false,
                        &format!("items[{i}]"),
                        "names both product_id and variant_id; name one",
                    );
                }
                (None, None) => {
                    checks.check(
                        false,
                        &format!("items[{i}].product_id"),
                        "is required (or variant_id)",
                    );
                }
                _ => {}
            }
            checks.range(
                &format!("items[{i}].quantity"),
                line.quantity,
                1,
                MAX_QUANTITY,
            );
        }
        addresses::check_choice(
            &mut checks,
            self.shipping_address_id.map(Id::get),
            self.shipping_address.as_ref(),
        );
        checks.finish()?;
        // Merged lines obey the same bound as single ones.
        let mut merged = Checks::new();
        for line in merge(&self.items) {
            merged.check(
                line.quantity <= MAX_QUANTITY,
                "items",
                format!(
                    "{} is ordered {} times; at most {MAX_QUANTITY}",
                    line.item, line.quantity
                ),
            );
        }
        merged.finish()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct OrderQuery {
    pub status: Option<Status>,
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for OrderQuery {}

/// The same product (or variant) twice becomes one line, at the index it was first
/// asked at; lines come out in the order of what they name.
pub fn merge(lines: &[LineRequest]) -> Vec<WantedLine> {
    let mut merged: BTreeMap<Item, WantedLine> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(item) = line.item() else { continue };
        merged
            .entry(item)
            .and_modify(|wanted| wanted.quantity = wanted.quantity.saturating_add(line.quantity))
            .or_insert(WantedLine::new(item, line.quantity, index));
    }
    merged.into_values().collect()
}
