//! What a product is, as the API shows it and as requests describe it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::MySqlConnection;

use crate::error::Result;
use crate::id::Id;
use crate::money::Money;
use crate::validate::{Checks, Validate, nullable, optional_whole, whole};
use crate::variants::{self, MAX_STOCK, Sku, Variant};

/// The longest product name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    pub price: Money,
    pub stock: u32,
    pub category_id: Option<u64>,
    #[serde(serialize_with = "crate::money::serialize_rating")]
    pub average_rating: Option<Decimal>,
    pub review_count: u32,
    #[serde(serialize_with = "crate::time::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::timestamp")]
    pub updated_at: DateTime<Utc>,
    /// Oldest first; at least one.
    pub variants: Vec<Variant>,
}

#[derive(sqlx::FromRow)]
pub(super) struct ProductRow {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) price: Decimal,
    pub(super) category_id: Option<u64>,
    pub(super) review_count: u32,
    pub(super) rating_sum: u32,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

impl ProductRow {
    pub(super) fn with(self, variants: Vec<Variant>) -> Product {
        let average_rating = (self.review_count > 0).then(|| {
            (Decimal::from(self.rating_sum) / Decimal::from(self.review_count)).round_dp(2)
        });
        // Each variant holds at most MAX_STOCK and a product far fewer than four billion
        // of them; saturate rather than wrap all the same.
        let stock = variants
            .iter()
            .fold(0u32, |sum, variant| sum.saturating_add(variant.stock));
        Product {
            id: self.id,
            name: self.name,
            description: self.description,
            price: Money::from_db(self.price),
            stock,
            category_id: self.category_id,
            average_rating,
            review_count: self.review_count,
            created_at: self.created_at,
            updated_at: self.updated_at,
            variants,
        }
    }
}

pub(super) const COLUMNS: &str = "p.id, p.name, p.description, p.price, p.category_id, \
     p.review_count, p.rating_sum, p.created_at, p.updated_at";

/// Products with their variants, in the order of `rows`: two queries for a whole page.
pub(super) async fn with_variants(
    conn: &mut MySqlConnection,
    rows: Vec<ProductRow>,
) -> Result<Vec<Product>> {
    let ids: Vec<u64> = rows.iter().map(|row| row.id).collect();
    let mut variants = variants::of_products(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let own = variants.remove(&row.id).unwrap_or_default();
            row.with(own)
        })
        .collect())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub price: Money,
    #[serde(deserialize_with = "whole")]
    pub stock: u32,
    #[serde(default)]
    pub category_id: Option<Id>,
    /// The default variant's SKU; made from the product id when absent.
    #[serde(default)]
    pub sku: Option<Sku>,
}

impl Validate for NewProduct {
    fn validate(&self) -> Result<(), Vec<crate::error::FieldError>> {
        Checks::new()
            .text("name", &self.name, 1, MAX_NAME_CHARS)
            .optional_text("description", self.description.as_deref(), 5000)
            .range("stock", self.stock, 0, MAX_STOCK)
            .finish()
    }
}

/// A partial update: absent fields stay as they are; `null` clears a nullable field.
/// `price` and `stock` belong to the product's only variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    pub price: Option<Money>,
    #[serde(default, deserialize_with = "optional_whole")]
    pub stock: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub category_id: Option<Option<Id>>,
}

impl Validate for ProductPatch {
    fn validate(&self) -> Result<(), Vec<crate::error::FieldError>> {
        let mut checks = Checks::new();
        let empty = self.name.is_none()
            && self.description.is_none()
            && self.price.is_none()
            && self.stock.is_none()
            && self.category_id.is_none();
        checks.check(!empty, "body", "must set at least one field");
        if let Some(name) = &self.name {
            checks.text("name", name, 1, MAX_NAME_CHARS);
        }
        checks.optional_text(
            "description",
            self.description.clone().flatten().as_deref(),
            5000,
        );
        if let Some(stock) = self.stock {
            checks.range("stock", stock, 0, MAX_STOCK);
        }
        checks.finish()
    }
}
