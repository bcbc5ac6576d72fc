//! An order checks its customer's pending orders whose hold still runs, under the lock on
//! the customer's row (`orders::admission::admit`): against the bound the row keeps, and by
//! a count when the bound is unknown or has reached the cap. The count reads the index
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

    let (admitted, read) = check_reading(&pool, user, 10).await;
    assert!(admitted.is_ok());
    // The update that found the bound unknown, the user's row read under its lock, the
    // count's three entries with the look-ups that find them, and the row again to set its
    // bound.
    assert!(
        read <= 1 + 3 + 4 + 1,
        "admitting the owner and counting 3 running holds read {read} rows among 123 orders"
    );
    assert_eq!(
        bound(&pool, user).await,
        Some(4),
        "3 counted, and the new order"
    );

    // Known and below the cap, the bound is all an order reads (one update by key).
    let (admitted, read) = check_reading(&pool, user, 10).await;
    assert!(admitted.is_ok());
    assert_eq!(read, 1);
    assert_eq!(bound(&pool, user).await, Some(5));
}

/// Whether an order for `user` is admitted under `cap` (a refusal is the conflict), and the
/// rows and index entries the check read, in a transaction of its own that commits (as an
/// order's does when it is written, raising the bound) or rolls back (as a refused order's
/// does).
async fn check_reading(
    pool: &MySqlPool,
    user: u64,
    cap: u32,
) -> (Result<(), domain::error::Error>, i64) {
    let mut tx = pool.begin().await.unwrap();
    let before = reads(&mut tx).await;
    let admitted = domain::orders::admission::admit(&mut tx, user, cap).await;
    let read = reads(&mut tx).await - before;
    match admitted {
        Ok(found) => {
            assert!(found, "the user exists");
            tx.commit().await.unwrap();
            (Ok(()), read)
        }
        Err(refusal) => {
            tx.rollback().await.unwrap();
            (Err(refusal), read)
        }
    }
}

/// The refusal's message names the orders counted.
fn refused_at(admitted: Result<(), domain::error::Error>) -> String {
    let refusal = admitted.expect_err("refused");
    assert!(
        matches!(
            refusal,
            domain::error::Error::Conflict {
                kind: domain::error::Conflict::TooManyPendingOrders,
                ..
            }
        ),
        "{refusal:?}"
    );
    refusal.to_string()
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

    // At the cap: counted, and the bound comes down to the count and the new order.
    assert!(check_reading(&pool, user, 5).await.0.is_ok());
    assert_eq!(bound(&pool, user).await, Some(3));

    // At a lower cap than the bound: the bound is not trusted, the count refuses.
    let refusal = refused_at(check_reading(&pool, user, 2).await.0);
    assert!(refusal.contains("2 pending orders"), "{refusal}");
    assert_eq!(
        bound(&pool, user).await,
        Some(3),
        "a refusal changes nothing"
    );

    // Unknown (as every account starts, or after orders written by hand): counted.
    orders(&pool, user, "pending", "1 HOUR", 4).await;
    set_bound(&pool, user, None).await;
    let refusal = refused_at(check_reading(&pool, user, 6).await.0);
    assert!(refusal.contains("6 pending orders"), "{refusal}");
    assert_eq!(bound(&pool, user).await, None);
    assert!(check_reading(&pool, user, 10).await.0.is_ok());
    assert_eq!(bound(&pool, user).await, Some(7));
}

/// An order for oneself is admitted by one update only for a customer whose token is
/// current and whose bound is below the cap; otherwise the row is read under that
/// update's lock and decided there: a stale token or a missing account is refused with
/// nothing raised, an admin is admitted as an admin.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_order_for_oneself_confirms_the_token_and_the_role(pool: MySqlPool) {
    use domain::caller::Claimed;
    use domain::orders::admission::admit_claimed;
    use domain::role::Role;

    let user = customer(&pool, "ada@example.com").await;
    set_bound(&pool, user, Some(0)).await;
    let admit = |claimed: Claimed| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let caller = admit_claimed(&mut tx, claimed, 10).await.unwrap();
            tx.commit().await.unwrap();
            caller.map(|caller| caller.role)
        }
    };
    let version: u32 = sqlx::query_scalar("SELECT token_version FROM users WHERE id = ?")
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap();
    let current = Claimed {
        id: user,
        token_version: version,
    };

    assert_eq!(admit(current).await, Some(Role::Customer));
    assert_eq!(bound(&pool, user).await, Some(1));

    let stale = Claimed {
        token_version: version + 1,
        ..current
    };
    assert_eq!(admit(stale).await, None);
    let gone = Claimed {
        id: user + 1000,
        ..current
    };
    assert_eq!(admit(gone).await, None);
    assert_eq!(
        bound(&pool, user).await,
        Some(1),
        "nothing raised for a refusal"
    );

    sqlx::query("UPDATE users SET role = 'admin' WHERE id = ?")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(admit(current).await, Some(Role::Admin));
    assert_eq!(bound(&pool, user).await, Some(2));
}
