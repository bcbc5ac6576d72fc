//! An order counts its customer's pending orders whose hold still runs, under the lock on
//! the customer's row (`stock::lock_owner`). The count reads the index entries of running
//! holds only: a customer's finished orders and run-out holds are never read again,
//! however many there are.

use sqlx::MySqlPool;

/// Rows and index entries this connection has read so far.
async fn reads(conn: &mut sqlx::MySqlConnection) -> i64 {
    let counters: Vec<(String, String)> =
        sqlx::query_as("SHOW SESSION STATUS LIKE 'Handler_read%'")
            .fetch_all(conn)
            .await
            .unwrap();
    counters
        .iter()
        .map(|(_, v)| v.parse::<i64>().unwrap())
        .sum()
}

async fn customer(pool: &MySqlPool, email: &str) -> u64 {
    sqlx::query("INSERT INTO users (name, email, password_hash) VALUES ('A customer', ?, 'x')")
        .bind(email)
        .execute(pool)
        .await
        .unwrap()
        .last_insert_id()
}

async fn orders(pool: &MySqlPool, user: u64, status: &str, expires: &str, n: usize) {
    for _ in 0..n {
        sqlx::query(&format!(
            "INSERT INTO orders (user_id, status, total, expires_at)
             VALUES (?, ?, 5.00, UTC_TIMESTAMP(6) + INTERVAL {expires})"
        ))
        .bind(user)
        .bind(status)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_pending_count_reads_only_running_holds(pool: MySqlPool) {
    let user = customer(&pool, "ada@example.com").await;
    // Other customers hold theirs too.
    let grace = customer(&pool, "grace@example.com").await;
    orders(&pool, grace, "pending", "1 HOUR", 30).await;
    orders(&pool, user, "delivered", "1 HOUR", 30).await;
    orders(&pool, user, "cancelled", "1 HOUR", 30).await;
    orders(&pool, user, "pending", "-1 SECOND", 30).await;
    orders(&pool, user, "pending", "1 HOUR", 3).await;
    // Statistics as a grown table has them.
    sqlx::query("ANALYZE TABLE orders")
        .execute(&pool)
        .await
        .unwrap();

    let mut tx = pool.begin().await.unwrap();
    let before = reads(&mut tx).await;
    let locked = domain::stock::lock_owner(&mut tx, user)
        .await
        .unwrap()
        .unwrap();
    let read = reads(&mut tx).await - before;
    assert_eq!(locked.pending, 3);
    // The user's row, and the count's three entries with the look-ups that find them.
    assert!(
        read <= 3 + 4,
        "locking the owner and counting 3 running holds read {read} rows among 123 orders"
    );
}
