//! Categories: names unique case-insensitively, with the number of products in each.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::error::{Conflict, Error, FieldError, Result};
use crate::page::{Keyset, Limit, Page, SortValue, into_page};
use crate::time::timestamp;
use crate::validate::{Checks, Validate, nullable};

/// The longest category name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Category {
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    pub product_count: i64,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl Validate for NewCategory {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Checks::new()
            .text("name", &self.name, 1, MAX_NAME_CHARS)
            .optional_text("description", self.description.as_deref(), 2000)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
}

impl Validate for CategoryPatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        checks.check(
            self.name.is_some() || self.description.is_some(),
            "body",
            "must set at least one field",
        );
        if let Some(name) = &self.name {
            checks.text("name", name, 1, MAX_NAME_CHARS);
        }
        checks
            .optional_text(
                "description",
                self.description.clone().flatten().as_deref(),
                2000,
            )
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CategoryQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for CategoryQuery {}

/// Categories are listed by name (unique, so the id tie-break never matters but is kept).
const SORT: &str = "name";
const ORDER: Keyset = Keyset {
    column: "c.name",
    id_column: "c.id",
    descending: false,
};

const SELECT: &str = "SELECT c.id, c.name, c.description, \
     (SELECT COUNT(*) FROM products p WHERE p.category_id = c.id) AS product_count, \
     c.created_at, c.updated_at FROM categories c WHERE 1 = 1";

pub async fn list(pool: &MySqlPool, query: &CategoryQuery) -> Result<Page<Category>> {
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(SELECT);
    let value = SortValue::Text {
        max_chars: MAX_NAME_CHARS,
    };
    ORDER.push_cursor(&mut qb, SORT, query.cursor.as_deref(), value)?;
    ORDER.push_order_and_limit(&mut qb, query.limit);
    let rows: Vec<Category> = qb.build_query_as().fetch_all(pool).await?;
    Ok(into_page(rows, query.limit, SORT, |c| {
        (c.name.clone(), c.id)
    }))
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Category> {
    sqlx::query_as!(
        Category,
        r#"SELECT c.id, c.name, c.description,
                  (SELECT COUNT(*) FROM products p WHERE p.category_id = c.id) AS "product_count!: i64",
                  c.created_at AS "created_at: DateTime<Utc>", c.updated_at AS "updated_at: DateTime<Utc>"
           FROM categories c WHERE c.id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("category"))
}

pub async fn create(pool: &MySqlPool, input: NewCategory) -> Result<Category> {
    let result = sqlx::query!(
        "INSERT INTO categories (name, description) VALUES (?, ?)",
        input.name,
        input.description
    )
    .execute(pool)
    .await
    .map_err(duplicate_name)?;
    get(pool, result.last_insert_id()).await
}

pub async fn update(pool: &MySqlPool, id: u64, patch: CategoryPatch) -> Result<Category> {
    let mut qb: QueryBuilder<MySql> =
        QueryBuilder::new("UPDATE categories SET updated_at = CURRENT_TIMESTAMP(6)");
    if let Some(name) = patch.name {
        qb.push(", name = ").push_bind(name);
    }
    if let Some(description) = patch.description {
        qb.push(", description = ").push_bind(description);
    }
    qb.push(" WHERE id = ").push_bind(id);
    let result = qb.build().execute(pool).await.map_err(duplicate_name)?;
    if result.rows_affected() == 0 {
        return Err(Error::NotFound("category"));
    }
    get(pool, id).await
}

/// Its products stay, uncategorised (`ON DELETE SET NULL`).
pub async fn delete(pool: &MySqlPool, id: u64) -> Result<()> {
    let result = sqlx::query!("DELETE FROM categories WHERE id = ?", id)
        .execute(pool)
        .await?;
    if result.rows_affected() == 0 {
        return Err(Error::NotFound("category"));
    }
    Ok(())
}

fn duplicate_name(err: sqlx::Error) -> Error {
    if platform::db::is_unique_violation(&err) {
        Error::Conflict {
            kind: Conflict::DuplicateCategory,
            detail: "A category with this name already exists.".into(),
            errors: vec![FieldError::new("name", "is already taken")],
        }
    } else {
        err.into()
    }
}
