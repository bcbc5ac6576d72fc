//! Products: the catalogue, its filters and sorts, and its SQL. A product sells through its
//! variants (`crate::variants`): its `price` is the lowest variant price (kept on the row,
//! for sorting) and its `stock` the sum of theirs.

mod listing;
mod model;

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use platform::db::Tx;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::variants;
use model::{ProductRow, with_variants};

pub use crate::variants::MAX_STOCK;
pub use listing::{ProductQuery, ProductSort, list};
pub use model::{MAX_NAME_CHARS, NewProduct, Product, ProductPatch};

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Product> {
    get_in(&mut *pool.acquire().await?, id).await
}

/// The product as the API shows it, read on `conn` (inside a transaction, what it sees).
pub async fn get_in(conn: &mut MySqlConnection, id: u64) -> Result<Product> {
    let row = sqlx::query_as!(
        ProductRow,
        r#"SELECT id, name, description, price, category_id, review_count, rating_sum,
                  created_at AS "created_at: DateTime<Utc>", updated_at AS "updated_at: DateTime<Utc>"
           FROM products WHERE id = ?"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound("product"))?;
    let mut products = with_variants(conn, vec![row]).await?;
    products.pop().ok_or(Error::NotFound("product"))
}

/// A product and its default variant, in one transaction.
pub async fn create(pool: &MySqlPool, input: NewProduct) -> Result<Product> {
    let id = platform::db::transaction(pool, |tx| {
        let input = input.clone();
        Box::pin(async move {
            let id = sqlx::query!(
                "INSERT INTO products (name, description, price, category_id) VALUES (?, ?, ?, ?)",
                input.name,
                input.description,
                input.price.amount(),
                input.category_id.map(Id::get)
            )
            .execute(&mut **tx)
            .await
            .map_err(unknown_category)?
            .last_insert_id();
            variants::create_default(tx, id, input.sku.as_ref(), input.price, input.stock).await?;
            Ok::<_, Error>(id)
        })
    })
    .await?;
    get(pool, id).await
}

/// The patch, inside `tx`, the product row locked first (level 5). Returns the stock its
/// only variant gained or lost, for `crate::stock::update_product`, which records it.
pub async fn update_in(
    tx: &mut Tx<'static>,
    id: u64,
    patch: &ProductPatch,
) -> Result<Option<(u64, i64)>> {
    let found = sqlx::query_scalar!("SELECT id FROM products WHERE id = ? FOR UPDATE", id)
        .fetch_optional(&mut **tx)
        .await?;
    if found.is_none() {
        return Err(Error::NotFound("product"));
    }
    let mut moved = None;
    if patch.price.is_some() || patch.stock.is_some() {
        moved = variants::set_only(tx, id, patch.price, patch.stock).await?;
    }
    let mut qb: QueryBuilder<MySql> =
        QueryBuilder::new("UPDATE products SET updated_at = CURRENT_TIMESTAMP(6)");
    if let Some(name) = &patch.name {
        qb.push(", name = ").push_bind(name.clone());
    }
    if let Some(description) = &patch.description {
        qb.push(", description = ").push_bind(description.clone());
    }
    if let Some(category_id) = patch.category_id {
        qb.push(", category_id = ").push_bind(category_id);
    }
    qb.push(" WHERE id = ").push_bind(id);
    qb.build()
        .execute(&mut **tx)
        .await
        .map_err(unknown_category)?;
    Ok(moved)
}

/// Deletes a product and its variants. Lines of orders that bought it keep their name,
/// SKU, options and price and lose the link; cart lines and reviews go with it.
pub async fn delete(pool: &MySqlPool, id: u64) -> Result<()> {
    platform::db::transaction(pool, |tx| {
        Box::pin(async move {
            remove_from_carts(tx, id).await?;
            // Done here, not by a foreign key: a key from order lines to products or
            // variants would lock their rows while an order is written, long before its
            // stock is taken.
            sqlx::query!(
                "UPDATE order_items SET product_id = NULL, variant_id = NULL WHERE product_id = ?",
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
/// lines and variants (see `crate::stock`), and so must this, or the two deadlock. They are
/// found by a plain read and deleted by primary key, as checkout locks them (through the
/// product index, each line's index entry would be locked before its row, the opposite
/// order). A line added after the read goes by cascade with the product.
async fn remove_from_carts(tx: &mut platform::db::Tx<'static>, id: u64) -> Result<()> {
    let holders = sqlx::query!(
        "SELECT user_id, variant_id FROM cart_items WHERE product_id = ?",
        id
    )
    .fetch_all(&mut **tx)
    .await?;
    for lines in holders.chunks(500) {
        let mut delete: QueryBuilder<MySql> = QueryBuilder::new(
            "DELETE c FROM cart_items AS c FORCE INDEX (PRIMARY) WHERE (c.user_id, c.variant_id) IN (",
        );
        let mut list = delete.separated(", ");
        for line in lines {
            list.push("(")
                .push_bind_unseparated(line.user_id)
                .push_unseparated(", ")
                .push_bind_unseparated(line.variant_id)
                .push_unseparated(")");
        }
        delete.push(")");
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
