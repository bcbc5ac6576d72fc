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

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: u32 = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    /// `null` once the product has been deleted; name and price stay as bought.
    pub product_id: Option<u64>,
    pub name: String,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub product_id: Id,
    #[serde(deserialize_with = "whole")]
    pub quantity: u32,
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
        for (product_id, quantity) in merge(&self.items) {
            merged.check(
                quantity <= MAX_QUANTITY,
                "items",
                format!("product {product_id} is ordered {quantity} times; at most {MAX_QUANTITY}"),
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

/// The same product twice becomes one line; lines come out in product-id order, which is
/// also the order their rows are locked in.
pub fn merge(lines: &[LineRequest]) -> Vec<(u64, u32)> {
    let mut merged: BTreeMap<u64, u32> = BTreeMap::new();
    for line in lines {
        *merged.entry(line.product_id.get()).or_default() += line.quantity;
    }
    merged.into_iter().collect()
}
