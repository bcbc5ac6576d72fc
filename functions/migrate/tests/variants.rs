//! The variants migration on a database filled by the schema before it: every product gets
//! its default variant with its price and stock, and every order, cart line, review,
//! payment and history row comes through, lines linked to the variant they bought.

use sqlx::MySqlPool;

/// The schema as deployed before variants: the migrations older than them.
async fn schema_before_variants(pool: &MySqlPool) {
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let earlier = std::env::temp_dir().join(format!(
        "migrations-before-variants-{}-{}",
        std::process::id(),
        pool.connect_options().get_database().unwrap_or_default()
    ));
    std::fs::create_dir_all(&earlier).unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "20261207000020" {
            std::fs::copy(&path, earlier.join(name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap()
        .run(pool)
        .await
        .unwrap();
    std::fs::remove_dir_all(&earlier).unwrap();
}

async fn run(pool: &MySqlPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn every_product_gets_its_default_variant_and_every_record_comes_through(pool: MySqlPool) {
    schema_before_variants(&pool).await;
    // As the previous version wrote them: two products (one with reviews), one deleted
    // since it was ordered; a cart; a pending order holding stock and a paid one with the
    // deleted product's line; their payments and history.
    run(
        &pool,
        "INSERT INTO users (id, name, email, password_hash) VALUES
             (1, 'Ada', 'ada@example.com', 'x'), (2, 'Bob', 'bob@example.com', 'x');
         INSERT INTO products (id, name, price, stock, review_count, rating_sum) VALUES
             (1, 'Mug', 4.10, 8, 1, 5), (2, 'Pen', 0.10, 93, 0, 0), (5, 'Gone', 3.00, 0, 0, 0);
         DELETE FROM products WHERE id = 5;
         INSERT INTO reviews (product_id, user_id, rating, comment) VALUES (1, 2, 5, 'Good');
         INSERT INTO cart_items (user_id, product_id, quantity) VALUES (1, 1, 2), (1, 2, 3);
         INSERT INTO orders (id, user_id, status, total, amount_paid, expires_at) VALUES
             (1, 1, 'pending', 8.90, 0, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR),
             (2, 2, 'paid', 7.10, 7.10, UTC_TIMESTAMP(6));
         INSERT INTO order_items (order_id, product_id, product_name, unit_price, quantity, line_total) VALUES
             (1, 1, 'Mug', 4.10, 2, 8.20), (1, 2, 'Pen', 0.10, 7, 0.70),
             (2, 1, 'Mug', 4.10, 1, 4.10), (2, NULL, 'Gone', 3.00, 1, 3.00);
         INSERT INTO order_status_history (order_id, status, actor) VALUES
             (1, 'pending', 'customer'), (2, 'pending', 'customer'), (2, 'paid', 'customer');
         INSERT INTO payments (order_id, amount, method) VALUES (2, 7.10, 'card');",
    )
    .await;

    domain::schema::migrate(&pool).await.unwrap();

    let variants: Vec<(u64, String, String, String, u32)> = sqlx::query_as(
        "SELECT product_id, CAST(sku AS CHAR), options, CAST(price AS CHAR), stock
         FROM variants ORDER BY product_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        variants,
        vec![
            (1, "P1".into(), "{}".into(), "4.10".into(), 8),
            (2, "P2".into(), "{}".into(), "0.10".into(), 93),
        ]
    );
    let stock_column: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'products' AND COLUMN_NAME = 'stock'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stock_column, 0, "stock lives on the variants only");

    let cart: Vec<(u64, u64, u32)> = sqlx::query_as(
        "SELECT c.product_id, c.variant_id, c.quantity FROM cart_items c
         JOIN variants v ON v.id = c.variant_id AND v.product_id = c.product_id
         ORDER BY c.product_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(cart.len(), 2, "each cart line names its product's variant");
    assert_eq!((cart[0].2, cart[1].2), (2, 3));

    type Line = (u64, Option<u64>, Option<String>, String, String);
    let lines: Vec<Line> = sqlx::query_as(
        "SELECT i.order_id, v.product_id, CAST(i.sku AS CHAR), i.options, i.product_name
         FROM order_items i LEFT JOIN variants v ON v.id = i.variant_id ORDER BY i.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        lines,
        vec![
            (1, Some(1), Some("P1".into()), "{}".into(), "Mug".into()),
            (1, Some(2), Some("P2".into()), "{}".into(), "Pen".into()),
            (2, Some(1), Some("P1".into()), "{}".into(), "Mug".into()),
            (2, None, None, "{}".into(), "Gone".into()),
        ]
    );
    for (table, rows) in [
        ("orders", 2),
        ("order_items", 4),
        ("order_status_history", 3),
        ("payments", 1),
        ("reviews", 1),
        ("products", 2),
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, rows, "{table}");
    }

    // The records read as the API shows them, and the pending order's stock goes back to
    // the variant it was taken from.
    let mug = domain::products::get(&pool, 1).await.unwrap();
    assert_eq!((mug.price.to_string(), mug.stock), ("4.10".into(), 8));
    assert_eq!(mug.variants.len(), 1);
    assert_eq!(mug.review_count, 1);
    let paid = domain::orders::get(&mut pool.acquire().await.unwrap(), 2)
        .await
        .unwrap();
    assert_eq!(paid.items[1].variant_id, None);
    assert_eq!(paid.total.to_string(), "7.10");
    let cart = domain::cart::get(&pool, 1).await.unwrap();
    assert_eq!(cart.total.to_string(), "8.50");
    let ada = domain::caller::Caller {
        id: 1,
        role: domain::role::Role::Customer,
    };
    let change: domain::orders::StatusChange =
        serde_json::from_value(serde_json::json!({"status": "cancelled"})).unwrap();
    domain::orders::set_status(&pool, ada, 1, change)
        .await
        .unwrap();
    let stock: Vec<u32> = sqlx::query_scalar("SELECT stock FROM variants ORDER BY product_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stock, vec![10, 100]);
}
