//! Listing products: filters over their variants, sorts, keyset pages.

use serde::Deserialize;
use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::model::{COLUMNS, MAX_NAME_CHARS, Product, ProductRow, with_variants};
use crate::error::Result;
use crate::money::PriceBound;
use crate::page::{Keyset, Limit, Page, SortValue, into_page};
use crate::validate::{Checks, Validate};

/// The orders a product listing may be sorted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ProductSort {
    #[default]
    #[serde(rename = "-created_at")]
    Newest,
    #[serde(rename = "created_at")]
    Oldest,
    #[serde(rename = "price")]
    PriceAsc,
    #[serde(rename = "-price")]
    PriceDesc,
    #[serde(rename = "name")]
    NameAsc,
    #[serde(rename = "-name")]
    NameDesc,
}

impl ProductSort {
    fn key(self) -> &'static str {
        match self {
            Self::Newest => "-created_at",
            Self::Oldest => "created_at",
            Self::PriceAsc => "price",
            Self::PriceDesc => "-price",
            Self::NameAsc => "name",
            Self::NameDesc => "-name",
        }
    }

    /// What the sort column holds; names are at most [`MAX_NAME_CHARS`].
    fn value(self) -> SortValue {
        match self {
            Self::Newest | Self::Oldest => SortValue::Time,
            Self::PriceAsc | Self::PriceDesc => SortValue::Money,
            Self::NameAsc | Self::NameDesc => SortValue::Text {
                max_chars: MAX_NAME_CHARS,
            },
        }
    }

    fn order(self) -> Keyset {
        let (column, descending) = match self {
            Self::Newest => ("p.created_at", true),
            Self::Oldest => ("p.created_at", false),
            Self::PriceAsc => ("p.price", false),
            Self::PriceDesc => ("p.price", true),
            Self::NameAsc => ("p.name", false),
            Self::NameDesc => ("p.name", true),
        };
        Keyset {
            column,
            id_column: "p.id",
            descending,
        }
    }

    fn position(self, product: &Product) -> (String, u64) {
        let value = match self {
            Self::Newest | Self::Oldest => crate::time::cursor_value(product.created_at),
            Self::PriceAsc | Self::PriceDesc => product.price.to_string(),
            Self::NameAsc | Self::NameDesc => product.name.clone(),
        };
        (value, product.id)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ProductQuery {
    pub category_id: Option<u64>,
    pub min_price: Option<PriceBound>,
    pub max_price: Option<PriceBound>,
    pub in_stock: Option<bool>,
    pub q: Option<String>,
    #[serde(default)]
    pub sort: ProductSort,
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for ProductQuery {
    fn validate(&self) -> Result<(), Vec<crate::error::FieldError>> {
        let mut checks = Checks::new();
        if let (Some(min), Some(max)) = (self.min_price, self.max_price) {
            checks.check(min <= max, "min_price", "must not exceed max_price");
        }
        if let Some(q) = &self.q {
            checks.text("q", q, 0, 200);
        }
        checks.finish()
    }
}

pub async fn list(pool: &MySqlPool, query: &ProductQuery) -> Result<Page<Product>> {
    let order = query.sort.order();
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new("SELECT ");
    qb.push(COLUMNS).push(" FROM products p WHERE 1 = 1");
    if let Some(category_id) = query.category_id {
        qb.push(" AND p.category_id = ").push_bind(category_id);
    }
    push_variant_filter(&mut qb, query);
    for word in query.q.iter().flat_map(|q| q.split_whitespace()) {
        let pattern = format!("%{}%", escape_like(word));
        qb.push(" AND (p.name LIKE ")
            .push_bind(pattern.clone())
            .push(" OR p.description LIKE ")
            .push_bind(pattern)
            .push(")");
    }
    order.push_cursor(
        &mut qb,
        query.sort.key(),
        query.cursor.as_deref(),
        query.sort.value(),
    )?;
    order.push_order_and_limit(&mut qb, query.limit);

    let mut conn = pool.acquire().await?;
    let rows: Vec<ProductRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
    let products = with_variants(&mut conn, rows).await?;
    Ok(into_page(products, query.limit, query.sort.key(), |p| {
        query.sort.position(p)
    }))
}

/// Price bounds and `in_stock` match a product when one of its variants satisfies all of
/// them together. The product's own price is its lowest variant price, so no variant of a
/// product priced above `max_price` can match: that bound also narrows the walk of
/// `products_price_idx` before the per-product check, which one index answers.
fn push_variant_filter(qb: &mut QueryBuilder<'_, MySql>, query: &ProductQuery) {
    if query.min_price.is_none() && query.max_price.is_none() && query.in_stock != Some(true) {
        return;
    }
    if let Some(max) = query.max_price {
        qb.push(" AND p.price <= ").push_bind(max.0);
    }
    // A scalar subquery, not EXISTS: the optimizer turns EXISTS into a semi-join that
    // reads every variant to build its table, a cost that grows with the catalogue; this
    // one is looked up in variants_product_price_stock_idx per product the page walks.
    qb.push(" AND (SELECT 1 FROM variants v WHERE v.product_id = p.id");
    if let Some(min) = query.min_price {
        qb.push(" AND v.price >= ").push_bind(min.0);
    }
    if let Some(max) = query.max_price {
        qb.push(" AND v.price <= ").push_bind(max.0);
    }
    if query.in_stock == Some(true) {
        qb.push(" AND v.stock > 0");
    }
    qb.push(" LIMIT 1) IS NOT NULL");
}

/// `LIKE` treats `%`, `_` and `\` specially; a search for "50%" means the text "50%".
fn escape_like(word: &str) -> String {
    let mut escaped = String::with_capacity(word.len());
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
