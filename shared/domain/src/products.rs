//! Products: the catalogue, its filters and sorts, and its SQL.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::money::{Money, PriceBound};
use crate::page::{Keyset, Limit, Page, SortValue, into_page};
use crate::time::timestamp;
use crate::validate::{Checks, Validate, nullable, optional_whole, whole};
use platform::db::Tx;

/// Highest stock a product may hold: far above any shelf, far below the column's limit,
/// so returning cancelled stock can never overflow it.
pub const MAX_STOCK: u32 = 1_000_000_000;
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
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: u64,
    name: String,
    description: Option<String>,
    price: Decimal,
    stock: u32,
    category_id: Option<u64>,
    review_count: u32,
    rating_sum: u32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        let average_rating = (row.review_count > 0)
            .then(|| (Decimal::from(row.rating_sum) / Decimal::from(row.review_count)).round_dp(2));
        Product {
            id: row.id,
            name: row.name,
            description: row.description,
            price: Money::from_db(row.price),
            stock: row.stock,
            category_id: row.category_id,
            average_rating,
            review_count: row.review_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "p.id, p.name, p.description, p.price, p.stock, p.category_id, \
     p.review_count, p.rating_sum, p.created_at, p.updated_at";

#[derive(Debug, Deserialize)]
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
    if let Some(min) = query.min_price {
        qb.push(" AND p.price >= ").push_bind(min.0);
    }
    if let Some(max) = query.max_price {
        qb.push(" AND p.price <= ").push_bind(max.0);
    }
    if query.in_stock == Some(true) {
        qb.push(" AND p.stock > 0");
    }
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

    let rows: Vec<ProductRow> = qb.build_query_as().fetch_all(pool).await?;
    let products = rows.into_iter().map(Product::from).collect();
    Ok(into_page(products, query.limit, query.sort.key(), |p| {
        query.sort.position(p)
    }))
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

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Product> {
    get_in(&mut *pool.acquire().await?, id).await
}

/// A product as `conn` sees it: inside a transaction, with that transaction's changes.
pub async fn get_in(conn: &mut sqlx::MySqlConnection, id: u64) -> Result<Product> {
    sqlx::query_as!(
        ProductRow,
        r#"SELECT id, name, description, price, stock, category_id, review_count, rating_sum,
                  created_at AS "created_at: DateTime<Utc>", updated_at AS "updated_at: DateTime<Utc>"
           FROM products WHERE id = ?"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .map(Product::from)
    .ok_or(Error::NotFound("product"))
}

pub async fn create(pool: &MySqlPool, input: NewProduct) -> Result<Product> {
    let result = sqlx::query!(
        "INSERT INTO products (name, description, price, stock, category_id) VALUES (?, ?, ?, ?, ?)",
        input.name,
        input.description,
        input.price.amount(),
        input.stock,
        input.category_id.map(Id::get)
    )
    .execute(pool)
    .await
    .map_err(unknown_category)?;
    get(pool, result.last_insert_id()).await
}

/// The patch, inside `tx`: `crate::stock::update_product` records what it does to stock.
pub async fn update_in(tx: &mut Tx<'static>, id: u64, patch: &ProductPatch) -> Result<()> {
    let mut qb: QueryBuilder<MySql> =
        QueryBuilder::new("UPDATE products SET updated_at = CURRENT_TIMESTAMP(6)");
    if let Some(name) = &patch.name {
        qb.push(", name = ").push_bind(name);
    }
    if let Some(description) = &patch.description {
        qb.push(", description = ").push_bind(description);
    }
    if let Some(price) = patch.price {
        qb.push(", price = ").push_bind(price.amount());
    }
    if let Some(stock) = patch.stock {
        qb.push(", stock = ").push_bind(stock);
    }
    if let Some(category_id) = patch.category_id {
        qb.push(", category_id = ").push_bind(category_id);
    }
    qb.push(" WHERE id = ").push_bind(id);
    let result = qb
        .build()
        .execute(&mut **tx)
        .await
        .map_err(unknown_category)?;
    if result.rows_affected() == 0 {
        return Err(Error::NotFound("product"));
    }
    Ok(())
}

/// Deletes a product. Lines of orders that bought it keep their name and price and lose
/// the link; cart lines and reviews go with it.
pub async fn delete(pool: &MySqlPool, id: u64) -> Result<()> {
    platform::db::transaction(pool, |tx| {
        Box::pin(async move {
            remove_from_carts(tx, id).await?;
            // Done here, not by a foreign key: a key from order lines to products would
            // lock a product row while an order is written, long before its stock is taken.
            sqlx::query!(
                "UPDATE order_items SET product_id = NULL WHERE product_id = ?",
                id
            )
            .execute(&mut **tx)
            .await?;
            let result = sqlx::query!("DELETE FROM products WHERE id = ?", id)
                .execute(&mut **tx)
                .await?;
            if result.rows_affected() == 0 {
                return Err(Error::NotFound("product"));
            }
            Ok(())
        })
    })
    .await
}

/// Cart lines leave with their product, first: checkout takes cart lines before order
/// lines and products (see `crate::stock`), and so must this, or the two deadlock. They are
/// found by a plain read and deleted by primary key, as checkout locks them (through the
/// product index, each line's index entry would be locked before its row, the opposite
/// order). A line added after the read goes by cascade with the product.
async fn remove_from_carts(tx: &mut platform::db::Tx<'static>, id: u64) -> Result<()> {
    let holders = sqlx::query_scalar!("SELECT user_id FROM cart_items WHERE product_id = ?", id)
        .fetch_all(&mut **tx)
        .await?;
    for users in holders.chunks(1000) {
        let mut delete: QueryBuilder<MySql> = QueryBuilder::new(
            "DELETE c FROM cart_items AS c FORCE INDEX (PRIMARY) WHERE c.product_id = ",
        );
        delete.push_bind(id).push(" AND c.user_id IN (");
        crate::sql::push_ids(&mut delete, users);
        delete.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn unknown_category(err: sqlx::Error) -> Error {
    if platform::db::is_foreign_key_violation(&err) {
        Error::invalid("category_id", "does not name an existing category")
    } else {
        err.into()
    }
}
