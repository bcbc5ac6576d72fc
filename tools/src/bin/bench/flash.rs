//! The flash sale: every buyer orders the same three products at the same moment, so every
//! order queues on the same row locks, as on a shop's busiest minute. Its floor is a
//! transaction that takes only those locks (one guarded stock update) and commits: no order
//! can be placed faster than that. The order floor adds the rows an order writes; the
//! checked order floor adds the two reads every order must also make before it writes, and
//! two floors in between add them a part at a time, so that each part's cost shows.

use sqlx::MySqlPool;

use crate::MAX_PENDING_ORDERS;
use crate::cpu::PerOp;
use crate::warm::{Stats, measure, next_buyer};

/// CPU per order (or per floor transaction) in the flash sale.
#[derive(Debug, Default)]
pub struct Cpu {
    pub lock_floor: PerOp,
    pub order_floor: PerOp,
    pub locked_floor: PerOp,
    pub counted_floor: PerOp,
    pub checked_floor: PerOp,
    pub domain: PerOp,
    pub http: PerOp,
}

/// What the flash sale measures in turns: the five floors, the domain code, and
/// `POST /orders` by product and by variant (in-process client).
pub const CONTENDERS: usize = 8;

/// Each contender's median run of three, taken in turns.
pub struct Sale {
    pub lock_floor: Stats,
    pub order_floor: Stats,
    pub locked_floor: Stats,
    pub counted_floor: Stats,
    pub checked_floor: Stats,
    pub domain: Stats,
    pub http: Stats,
    pub by_variant: Stats,
}

/// Statements the database runs per flash-sale order, measured at concurrency 1.
#[derive(Debug, Default)]
pub struct Statements {
    pub order_floor: f64,
    pub checked_floor: f64,
    pub http: f64,
}

/// The ids of `products`' variants, in the order an order locks them.
async fn variant_ids(pool: &MySqlPool, products: &[u64]) -> Vec<u64> {
    let mut variants = sqlx::QueryBuilder::new("SELECT id FROM variants WHERE product_id IN (");
    let mut ids = variants.separated(", ");
    for id in products {
        ids.push_bind(*id);
    }
    variants.push(") ORDER BY id");
    variants.build_query_scalar().fetch_all(pool).await.unwrap()
}

/// `n` transactions on `concurrency` connections, each taking one unit of every product's
/// (only) variant with the guarded update an order uses (by variant id, as an order takes
/// its stock: by product id, MariaDB's plan for the same update can change between runs
/// and lock the rows in another order, and the floor deadlocks with itself), then
/// committing.
pub async fn lock_floor(pool: &MySqlPool, products: &[u64], n: usize, concurrency: usize) -> Stats {
    let variants = variant_ids(pool, products).await;
    let pool = pool.clone();
    measure(n, concurrency, move || {
        let (pool, variants) = (pool.clone(), variants.clone());
        async move {
            let mut tx = pool.begin().await.unwrap();
            let mut update =
                sqlx::QueryBuilder::new("UPDATE variants SET stock = stock - 1 WHERE id IN (");
            let mut ids = update.separated(", ");
            for id in &variants {
                ids.push_bind(*id);
            }
            update.push(") AND stock >= 1");
            let taken = update.build().execute(&mut *tx).await.unwrap();
            assert_eq!(taken.rows_affected(), variants.len() as u64);
            tx.commit().await.unwrap();
        }
    })
    .await
}

/// The reads an order floor makes before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    None,
    /// The owner admitted as an order for oneself admits them (the domain's own function):
    /// one statement that locks their row, checks the token's columns and raises the bound
    /// on their running holds, nothing counted while the bound is below the cap.
    Lock,
    /// The owner's row locked with their running holds counted in the same statement, as
    /// an order locked it before the row kept a bound. Written here by hand: no path
    /// issues it any more; it shows in the same run what the bound saves.
    LockAndCount,
    /// The owner's row locked as an order locks it, then the lines' names, prices and stock.
    All,
}

/// The fair floor for a whole order: the rows a flash-sale order writes (the order, its
/// history, its three lines in one insert, its event with a payload of an order's size) and
/// the same guarded stock update, in as few statements as SQL allows, then the commit. What
/// it leaves out is what an order must also do: lock and check its owner, read prices.
/// The flash sale sends no idempotency key, so none is written here either.
///
/// With [`Checks::All`], it first makes the two statements an order cannot skip, as an
/// order makes them: the owner admitted (the domain's own function: their row locked, the
/// token checked and the bound on their running holds raised in one statement), and the
/// lines' names, prices and stock read by variant id. What is then left between it and
/// `POST /orders` is the code and the savepoint an order adds to its stock update's round
/// trip, not the SQL an order needs.
pub async fn order_floor(
    pool: &MySqlPool,
    products: &[u64],
    buyers: &[u64],
    n: usize,
    concurrency: usize,
    checks: Checks,
) -> Stats {
    let variants = variant_ids(pool, products).await;
    // What each buyer's token claims, as an order for oneself confirms it.
    let mut claims = Vec::with_capacity(buyers.len());
    for id in buyers {
        let token_version = sqlx::query_scalar("SELECT token_version FROM users WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
        claims.push(domain::caller::Claimed {
            id: *id,
            token_version,
        });
    }
    let buyers = claims;
    let payload: String = format!("{{\"order\":\"{}\"}}", "x".repeat(700));
    let pool = pool.clone();
    measure(n, concurrency, move || {
        let (pool, variants, buyers, payload) = (
            pool.clone(),
            variants.clone(),
            buyers.clone(),
            payload.clone(),
        );
        async move {
            let buyer = buyers[next_buyer() % buyers.len()];
            let mut tx = pool.begin().await.unwrap();
            if matches!(checks, Checks::Lock | Checks::All) {
                let admitted =
                    domain::orders::admission::admit_claimed(&mut tx, buyer, MAX_PENDING_ORDERS)
                        .await
                        .unwrap();
                assert!(admitted.is_some());
            }
            if checks == Checks::LockAndCount {
                let owner = sqlx::query(
                    "SELECT u.role, u.token_version, \
                     (SELECT COUNT(*) FROM orders o FORCE INDEX (orders_user_status_expires_idx) \
                      WHERE o.user_id = u.id AND o.status = 'pending' \
                        AND o.expires_at > UTC_TIMESTAMP(6)) \
                     FROM users u WHERE u.id = ? FOR UPDATE",
                )
                .bind(buyer.id)
                .fetch_optional(&mut *tx)
                .await
                .unwrap();
                assert!(owner.is_some());
            }
            if checks == Checks::All {
                let mut read = sqlx::QueryBuilder::new(
                    "SELECT v.id, p.name, v.price, v.stock, CAST(v.sku AS CHAR), \
                     CAST(v.options AS CHAR), UTC_TIMESTAMP(6) \
                     FROM variants v JOIN products p ON p.id = v.product_id WHERE v.id IN (",
                );
                let mut ids = read.separated(", ");
                for id in &variants {
                    ids.push_bind(*id);
                }
                read.push(")");
                let offers = read.build().fetch_all(&mut *tx).await.unwrap();
                assert_eq!(offers.len(), variants.len());
            }
            let order = sqlx::query(
                "INSERT INTO orders (user_id, status, subtotal, total, expires_at, created_at, \
                 updated_at) VALUES (?, 'pending', 3, 3, UTC_TIMESTAMP(6) + INTERVAL 30 MINUTE, \
                 UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            )
            .bind(buyer.id)
            .execute(&mut *tx)
            .await
            .unwrap()
            .last_insert_id();
            sqlx::query(
                "INSERT INTO order_status_history (order_id, status, actor, entered_at) \
                 VALUES (?, 'pending', 'customer', UTC_TIMESTAMP(6))",
            )
            .bind(order)
            .execute(&mut *tx)
            .await
            .unwrap();
            let mut lines = sqlx::QueryBuilder::new(
                "INSERT INTO order_items (order_id, variant_id, product_name, sku, options, \
                 unit_price, quantity, line_total) ",
            );
            lines.push_values(&variants, |mut row, variant| {
                row.push_bind(order)
                    .push_bind(*variant)
                    .push_bind("Benchmark product")
                    .push_bind(format!("SKU-{variant}"))
                    .push_bind("{}")
                    .push_bind(1)
                    .push_bind(1)
                    .push_bind(1);
            });
            lines.build().execute(&mut *tx).await.unwrap();
            sqlx::query("INSERT INTO events (type, data, order_id) VALUES ('order.created', ?, ?)")
                .bind(&payload)
                .bind(order)
                .execute(&mut *tx)
                .await
                .unwrap();
            let mut update =
                sqlx::QueryBuilder::new("UPDATE variants SET stock = stock - 1 WHERE id IN (");
            let mut ids = update.separated(", ");
            for id in &variants {
                ids.push_bind(*id);
            }
            update.push(") AND stock >= 1");
            let taken = update.build().execute(&mut *tx).await.unwrap();
            assert_eq!(taken.rows_affected(), variants.len() as u64);
            tx.commit().await.unwrap();
        }
    })
    .await
}

/// Statements the database server has run so far, all sessions (`Questions`): read before
/// and after a run, the difference over the run's calls is what each call costs it.
pub async fn statements_so_far(pool: &MySqlPool) -> u64 {
    let (_, value): (String, String) = sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Questions'")
        .fetch_one(pool)
        .await
        .unwrap();
    value.parse().unwrap()
}
