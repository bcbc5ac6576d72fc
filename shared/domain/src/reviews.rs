//! Reviews, and the rating aggregates kept on each product in the same transactions, so
//! that every product response (lists included) carries `average_rating` and
//! `review_count` without touching the reviews table.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::caller::Caller;
use crate::error::{Conflict, Error, FieldError, Result};
use crate::id::Id;
use crate::page::{Keyset, Limit, Page, into_page};
use crate::stock;
use crate::time::timestamp;
use crate::validate::{Checks, Validate, whole};
use platform::db::{self, Tx};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Review {
    pub id: u64,
    pub product_id: u64,
    pub user_id: u64,
    pub user_name: String,
    pub rating: u8,
    pub comment: Option<String>,
    pub verified_purchase: bool,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    #[serde(default)]
    pub user_id: Option<Id>,
    #[serde(deserialize_with = "whole")]
    pub rating: u8,
    #[serde(default)]
    pub comment: Option<String>,
}

impl Validate for NewReview {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Checks::new()
            .range("rating", self.rating, 1, 5)
            .optional_text("comment", self.comment.as_deref(), 2000)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ReviewQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for ReviewQuery {}

const SELECT: &str = "SELECT r.id, r.product_id, r.user_id, u.name AS user_name, r.rating, r.comment, \
     r.verified_purchase, r.created_at FROM reviews r JOIN users u ON u.id = r.user_id";

/// One review per user and product. `verified_purchase` is decided now, from the user's
/// paid, processing, shipped or delivered orders containing the product.
pub async fn create(
    pool: &MySqlPool,
    caller: Caller,
    product_id: u64,
    input: NewReview,
) -> Result<Review> {
    let user_id = caller.acting_for(input.user_id.map(Id::get))?;
    let input = std::sync::Arc::new(input);
    db::transaction(pool, |tx| {
        let input = input.clone();
        Box::pin(async move {
            // The author first, then the product (the lock order of `crate::stock`): the
            // account cannot be deleted halfway, and locking the product serialises the
            // aggregate updates of concurrent reviews.
            if !stock::lock_user_shared(tx, user_id).await? {
                return Err(Error::invalid("user_id", "does not name an existing user"));
            }
            let product = sqlx::query_scalar!("SELECT id FROM products WHERE id = ? FOR UPDATE", product_id)
                .fetch_optional(&mut **tx)
                .await?;
            if product.is_none() {
                return Err(Error::NotFound("product"));
            }
            let verified = sqlx::query_scalar!(
                r#"SELECT EXISTS (
                       SELECT 1 FROM order_items oi JOIN orders o ON o.id = oi.order_id
                       WHERE o.user_id = ? AND oi.product_id = ?
                         AND o.status IN ('paid', 'processing', 'shipped', 'delivered')
                   ) AS "verified!: bool""#,
                user_id,
                product_id
            )
            .fetch_one(&mut **tx)
            .await?;
            let id = sqlx::query!(
                "INSERT INTO reviews (product_id, user_id, rating, comment, verified_purchase) VALUES (?, ?, ?, ?, ?)",
                product_id,
                user_id,
                input.rating,
                input.comment,
                verified
            )
            .execute(&mut **tx)
            .await
            .map_err(|err| {
                if db::is_unique_violation(&err) {
                    Error::conflict(
                Conflict::DuplicateReview, "This user has already reviewed this product.")
                } else if db::is_foreign_key_violation(&err) {
                    Error::invalid("user_id", "does not name an existing user")
                } else {
                    err.into()
                }
            })?
            .last_insert_id();
            sqlx::query!(
                "UPDATE products SET review_count = review_count + 1, rating_sum = rating_sum + ? WHERE id = ?",
                input.rating,
                product_id
            )
            .execute(&mut **tx)
            .await?;
            read(tx, id).await
        })
    })
    .await
}

/// A single review: public, like the product's review list.
pub async fn get(pool: &MySqlPool, id: u64) -> Result<Review> {
    read(&mut *pool.acquire().await?, id).await
}

async fn read(conn: &mut MySqlConnection, id: u64) -> Result<Review> {
    sqlx::query_as!(
        Review,
        r#"SELECT r.id, r.product_id, r.user_id, u.name AS user_name, r.rating, r.comment,
                  r.verified_purchase AS "verified_purchase: bool",
                  r.created_at AS "created_at: DateTime<Utc>"
           FROM reviews r JOIN users u ON u.id = r.user_id WHERE r.id = ?"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("review"))
}

const LIST_SORT: &str = "-created_at";
const LIST_ORDER: Keyset = Keyset {
    column: "r.created_at",
    id_column: "r.id",
    descending: true,
};

/// A product's reviews, newest first; not found for an unknown product.
pub async fn list(pool: &MySqlPool, product_id: u64, query: &ReviewQuery) -> Result<Page<Review>> {
    let product = sqlx::query_scalar!("SELECT id FROM products WHERE id = ?", product_id)
        .fetch_optional(pool)
        .await?;
    if product.is_none() {
        return Err(Error::NotFound("product"));
    }
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(SELECT);
    qb.push(" WHERE r.product_id = ").push_bind(product_id);
    LIST_ORDER.push_time_cursor(&mut qb, LIST_SORT, query.cursor.as_deref())?;
    LIST_ORDER.push_order_and_limit(&mut qb, query.limit);
    let rows: Vec<Review> = qb.build_query_as().fetch_all(pool).await?;
    Ok(into_page(rows, query.limit, LIST_SORT, |r| {
        (crate::time::cursor_value(r.created_at), r.id)
    }))
}

/// The author or an admin deletes a review (forbidden to anyone else); the product's
/// aggregates drop it in the same transaction.
pub async fn delete(pool: &MySqlPool, caller: Caller, id: u64) -> Result<()> {
    db::transaction(pool, |tx| {
        Box::pin(async move {
            let review = sqlx::query!(
                "SELECT product_id, user_id, rating FROM reviews WHERE id = ?",
                id
            )
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(Error::NotFound("review"))?;
            if review.user_id != caller.id && !caller.is_admin() {
                return Err(Error::Forbidden("Only the author or an admin may delete a review."));
            }
            // Author, product, then review: the same lock order as creation, and an account
            // deletion (which removes the author's ratings itself) cannot overlap.
            stock::lock_user_shared(tx, review.user_id).await?;
            sqlx::query_scalar!("SELECT id FROM products WHERE id = ? FOR UPDATE", review.product_id)
                .fetch_optional(&mut **tx)
                .await?;
            let deleted = sqlx::query!("DELETE FROM reviews WHERE id = ?", id)
                .execute(&mut **tx)
                .await?;
            if deleted.rows_affected() == 1 {
                sqlx::query!(
                    "UPDATE products SET review_count = review_count - 1, rating_sum = rating_sum - ? WHERE id = ?",
                    review.rating,
                    review.product_id
                )
                .execute(&mut **tx)
                .await?;
            }
            Ok(())
        })
    })
    .await
}

/// The (product, rating) of every review a user wrote, for an account deletion that
/// holds the user's row: no review of theirs can come or go meanwhile.
pub async fn ratings_of_user(
    tx: &mut Tx<'static>,
    user_id: u64,
) -> Result<Vec<(u64, u8)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT product_id, rating FROM reviews WHERE user_id = ?",
        user_id
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.product_id, r.rating)).collect())
}
