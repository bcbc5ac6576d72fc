//! Reviews and the rating aggregates kept on each product.

use crate::db::Tx;

/// Takes a user's reviews out of the products' `review_count` and `rating_sum`, before the
/// reviews themselves go by cascade with the user.
pub async fn forget_ratings_of_user(tx: &mut Tx<'static>, user_id: u64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE products p JOIN reviews r ON r.product_id = p.id
         SET p.review_count = p.review_count - 1, p.rating_sum = p.rating_sum - r.rating
         WHERE r.user_id = ?",
        user_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
