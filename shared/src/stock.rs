//! Stock movements. Every change to `products.stock` goes through here, inside the caller's
//! transaction, locking product rows in id order so that two transactions touching the same
//! products always queue instead of deadlocking.

use crate::db::Tx;

/// Puts back the stock held by every pending order of a user (their account is going away).
pub async fn release_pending_orders_of_user(
    tx: &mut Tx<'static>,
    user_id: u64,
) -> Result<(), sqlx::Error> {
    let held = sqlx::query!(
        r#"SELECT oi.product_id AS "product_id!: u64", CAST(SUM(oi.quantity) AS UNSIGNED) AS "quantity!: u64"
           FROM order_items oi JOIN orders o ON o.id = oi.order_id
           WHERE o.user_id = ? AND o.status = 'pending' AND oi.product_id IS NOT NULL
           GROUP BY oi.product_id
           ORDER BY oi.product_id"#,
        user_id
    )
    .fetch_all(&mut **tx)
    .await?;
    let lines: Vec<(u64, u64)> = held
        .into_iter()
        .map(|r| (r.product_id, r.quantity))
        .collect();
    put_back(tx, &lines).await
}

/// Adds `quantity` back to each product (lines sorted by product id; deleted products are
/// simply absent and have nothing to receive).
pub async fn put_back(tx: &mut Tx<'static>, lines: &[(u64, u64)]) -> Result<(), sqlx::Error> {
    let mut sorted = lines.to_vec();
    sorted.sort_unstable();
    for (product_id, quantity) in sorted {
        sqlx::query!(
            "UPDATE products SET stock = stock + ?, updated_at = CURRENT_TIMESTAMP(6) WHERE id = ?",
            quantity,
            product_id
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
