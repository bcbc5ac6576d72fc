//! Payments: money in against an order's total, never more, and refunds on cancel.

use crate::db::Tx;

/// Marks every completed payment of an order refunded, inside the cancel's transaction.
pub async fn refund_all_in(tx: &mut Tx<'static>, order_id: u64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payments SET status = 'refunded', updated_at = CURRENT_TIMESTAMP(6)
         WHERE order_id = ? AND status = 'completed'",
        order_id
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("UPDATE orders SET amount_paid = 0 WHERE id = ?", order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
