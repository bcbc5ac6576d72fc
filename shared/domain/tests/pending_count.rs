//! An order checks its customer's pending orders whose hold still runs, under the lock on
//! the customer's row (`orders::admission::lock_owner`): against the bound the row keeps, and by a
//! count when the bound is unknown or has reached the cap. The count reads the index
//! entries of running holds only: a customer's finished orders and run-out holds are never
//! read again, however many there are.

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

    let (pending, read) = check_reading(&pool, user, 10).await;
    assert_eq!(pending, 3);
    // The user's row, the count's three entries with the look-ups that find them, and the
    // row again to set its bound.
    assert!(
        read <= 3 + 4 + 1,
        "locking the owner and counting 3 running holds read {read} rows among 123 orders"
    );
    assert_eq!(bound(&pool, user).await, Some(3));

    // Known and below the cap, the bound is all an order reads.
    assert_eq!(check_reading(&pool, user, 10).await, (3, 1));
}

/// The pending orders an order for `user` is checked against under `cap`, and the rows
/// and index entries the check read, in a transaction of its own that commits.
async fn check_reading(pool: &MySqlPool, user: u64, cap: u32) -> (i64, i64) {
    let mut tx = pool.begin().await.unwrap();
    let before = reads(&mut tx).await;
    let locked = domain::orders::admission::lock_owner(&mut tx, user, cap)
        .await
        .unwrap()
        .unwrap();
    let read = reads(&mut tx).await - before;
    tx.commit().await.unwrap();
    (locked.pending, read)
}

async fn bound(pool: &MySqlPool, user: u64) -> Option<u32> {
    sqlx::query_scalar("SELECT pending_orders_bound FROM users WHERE id = ?")
        .bind(user)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn set_bound(pool: &MySqlPool, user: u64, value: Option<u32>) {
    sqlx::query("UPDATE users SET pending_orders_bound = ? WHERE id = ?")
        .bind(value)
        .bind(user)
        .execute(pool)
        .await
        .unwrap();
}

/// The bound is only ever above the running holds (orders end without touching it), so
/// one that has reached the cap is checked by a count, which sets it again, and a refusal
/// always rests on a count, never on the bound.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_bound_at_the_cap_is_counted_again(pool: MySqlPool) {
    let user = customer(&pool, "ada@example.com").await;
    orders(&pool, user, "pending", "1 HOUR", 2).await;
    orders(&pool, user, "pending", "-1 SECOND", 5).await;
    orders(&pool, user, "paid", "1 HOUR", 5).await;
    set_bound(&pool, user, Some(5)).await;

    // At the cap: counted, and the bound comes down to the count.
    assert_eq!(check_reading(&pool, user, 5).await.0, 2);
    assert_eq!(bound(&pool, user).await, Some(2));

    // Below a lower cap than the bound: the bound is not trusted either.
    assert_eq!(
        check_reading(&pool, user, 2).await.0,
        2,
        "the count, not the bound"
    );
    assert_eq!(bound(&pool, user).await, Some(2), "no room: left as it was");

    // Unknown (as every account starts, or after orders written by hand): counted.
    orders(&pool, user, "pending", "1 HOUR", 4).await;
    set_bound(&pool, user, None).await;
    assert_eq!(check_reading(&pool, user, 10).await.0, 6);
    assert_eq!(bound(&pool, user).await, Some(6));
}
