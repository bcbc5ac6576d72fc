//! The discounts migration on a database filled by the version before it: every order keeps
//! its total, as its subtotal, with no discount.

use std::borrow::Cow;

use sqlx::MySqlPool;
use sqlx::migrate::Migrator;

const DISCOUNTS_MIGRATION: i64 = 20261207000010;

#[sqlx::test(migrations = false)]
async fn existing_orders_get_their_total_as_subtotal_and_no_discount(pool: MySqlPool) {
    let before: Vec<_> = domain::MIGRATOR
        .iter()
        .filter(|m| m.version < DISCOUNTS_MIGRATION)
        .cloned()
        .collect();
    let previous = Migrator {
        migrations: Cow::Owned(before),
        ..Migrator::DEFAULT
    };
    previous.run(&pool).await.unwrap();
    let user = sqlx::query(
        "INSERT INTO users (name, email, password_hash) VALUES ('Ada', 'ada@example.com', 'x')",
    )
    .execute(&pool)
    .await
    .unwrap()
    .last_insert_id();
    let mut orders = Vec::new();
    for (status, total, paid) in [("pending", "12.34", "0"), ("paid", "99.99", "99.99")] {
        let id = sqlx::query(
            "INSERT INTO orders (user_id, status, total, amount_paid, expires_at)
             VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)",
        )
        .bind(user)
        .bind(status)
        .bind(total)
        .bind(paid)
        .execute(&pool)
        .await
        .unwrap()
        .last_insert_id();
        orders.push((id, total));
    }

    domain::MIGRATOR.run(&pool).await.unwrap();

    for (id, total) in orders {
        let order = domain::orders::get(&mut pool.acquire().await.unwrap(), id)
            .await
            .unwrap();
        assert_eq!(order.subtotal.to_string(), total);
        assert_eq!(order.total.to_string(), total);
        assert!(order.discount.is_none());
    }
    // A row written as before, without the new columns, still reads its total as subtotal.
    let later = sqlx::query(
        "INSERT INTO orders (user_id, total, expires_at) VALUES (?, 5.5, UTC_TIMESTAMP(6))",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap()
    .last_insert_id();
    let subtotal: String =
        sqlx::query_scalar("SELECT CAST(subtotal AS CHAR) FROM orders WHERE id = ?")
            .bind(later)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(subtotal, "5.50");
}
