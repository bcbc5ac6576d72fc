//! The flash sale: every buyer orders the same three products at the same moment, so every
//! order queues on the same row locks, as on a shop's busiest minute. Its floor is a
//! transaction that takes only those locks (one guarded stock update) and commits: no order
//! can be placed faster than that.

use sqlx::MySqlPool;

use crate::cpu::PerOp;
use crate::warm::{Stats, measure};

/// CPU per order (or per floor transaction) in the flash sale.
#[derive(Debug, Default)]
pub struct Cpu {
    pub lock_floor: PerOp,
    pub domain: PerOp,
    pub http: PerOp,
}

/// `n` transactions on `concurrency` connections, each taking one unit of every product's
/// (only) variant
/// with the guarded update an order uses, then committing.
pub async fn lock_floor(pool: &MySqlPool, products: &[u64], n: usize, concurrency: usize) -> Stats {
    let (pool, products) = (pool.clone(), products.to_vec());
    measure(n, concurrency, move || {
        let (pool, products) = (pool.clone(), products.clone());
        async move {
            let mut tx = pool.begin().await.unwrap();
            let mut update = sqlx::QueryBuilder::new(
                "UPDATE variants SET stock = stock - 1 WHERE stock >= 1 AND product_id IN (",
            );
            let mut ids = update.separated(", ");
            for id in &products {
                ids.push_bind(*id);
            }
            update.push(")");
            let taken = update.build().execute(&mut *tx).await.unwrap();
            assert_eq!(taken.rows_affected(), products.len() as u64);
            tx.commit().await.unwrap();
        }
    })
    .await
}
