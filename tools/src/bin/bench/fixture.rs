//! The benchmark's database: 100k products, a customer with a known password, an order,
//! and the buyers of the flash sale.

use std::time::Duration;

use platform::config::Secret;
use sqlx::MySqlPool;
use web::state::AppState;

use crate::{JWT_SECRET, MAX_PENDING_ORDERS, PASSWORD, PRODUCTS};

/// Buyers in the flash sale. Orders of one customer take turns on their row (the cap on
/// pending orders is counted under it), so a sale is many buyers, as in a shop.
pub const BUYERS: u64 = 64;

#[derive(Clone)]
pub struct Fixture {
    pub user_id: u64,
    pub email: String,
    pub product_ids: Vec<u64>,
    pub order_id: u64,
    pub deep_cursor: String,
    pub buyer_ids: Vec<u64>,
    /// The three sizes of the one product sold in several variants.
    pub size_ids: Vec<u64>,
}

impl Fixture {
    pub async fn load(pool: &MySqlPool) -> Fixture {
        let (user_id, email): (u64, String) = sqlx::query_as(
            "SELECT id, CAST(email AS CHAR) FROM users WHERE email = 'bench@example.com'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let product_ids: Vec<u64> =
            sqlx::query_scalar("SELECT id FROM products ORDER BY id LIMIT 3")
                .fetch_all(pool)
                .await
                .unwrap();
        let order_id: u64 = sqlx::query_scalar("SELECT id FROM orders LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap();
        // The position 20 items before the end of a newest-first walk of the whole catalogue.
        let (at, id): (chrono::DateTime<chrono::Utc>, u64) = sqlx::query_as(
            "SELECT created_at, id FROM products ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
        )
        .bind(PRODUCTS - 21)
        .fetch_one(pool)
        .await
        .unwrap();
        let deep_cursor =
            domain::page::Cursor::encode("-created_at", domain::time::cursor_value(at), id);
        let buyer_ids = sqlx::query_scalar("SELECT id FROM users WHERE name = 'Buyer' ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
        let size_ids = sqlx::query_scalar(
            "SELECT id FROM variants WHERE product_id = (SELECT MAX(id) FROM products) ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        Fixture {
            size_ids,
            user_id,
            email,
            product_ids,
            order_id,
            deep_cursor,
            buyer_ids,
        }
    }
}

/// The buyers' pending orders are made to have run out. A shop's customer holds a few
/// pending orders at most (`MAX_PENDING_ORDERS`, 10 by default), each counted when they
/// order again; the benchmark's buyers place thousands between them, so before each sale
/// their earlier holds end, as they would in a shop, and each order counts what a
/// customer's would.
pub async fn holds_run_out(pool: &MySqlPool) {
    sqlx::query(
        "UPDATE orders SET expires_at = UTC_TIMESTAMP(6)
         WHERE status = 'pending' AND expires_at > UTC_TIMESTAMP(6)",
    )
    .execute(pool)
    .await
    .unwrap();
}

pub fn bench_state(url: &str) -> AppState {
    let config = platform::config::Config {
        database: platform::config::DatabaseConfig {
            options: platform::config::options_from_url(url).unwrap(),
            max_connections: 16,
            credentials: None,
        },
        jwt_secret: Secret::new(JWT_SECRET),
        jwt_source: None,
        secrets_refresh: platform::config::DEFAULT_SECRETS_REFRESH,
        token_ttl: Duration::from_secs(3600),
    };
    let limits = domain::settings::OrderLimits {
        max_pending: MAX_PENDING_ORDERS,
        ..Default::default()
    };
    AppState::new(&config, limits)
}

pub async fn prepare_database(url: &str) -> MySqlPool {
    use sqlx::migrate::MigrateDatabase;
    if sqlx::MySql::database_exists(url).await.unwrap() {
        sqlx::MySql::drop_database(url).await.unwrap();
    }
    sqlx::MySql::create_database(url).await.unwrap();
    let pool = platform::db::pool_with(platform::config::options_from_url(url).unwrap(), 4);
    domain::schema::migrate(&pool).await.unwrap();
    // Spread over time so that the newest-first walk has distinct timestamps.
    for start in (0..PRODUCTS).step_by(5_000) {
        let mut qb =
            sqlx::QueryBuilder::new("INSERT INTO products (name, description, price, created_at) ");
        qb.push_values(start..(start + 5_000).min(PRODUCTS), |mut row, i| {
            row.push_bind(format!("Product {i}"))
                .push_bind(format!("Benchmark product number {i}"))
                .push_bind(rust_decimal::Decimal::new(100 + (i as i64 % 9_900), 2))
                .push("UTC_TIMESTAMP(6) - INTERVAL ")
                .push_bind_unseparated(i)
                .push_unseparated(" SECOND");
        });
        qb.build().execute(&pool).await.unwrap();
    }
    // Each product's default variant, as the API would make it.
    sqlx::query(
        "INSERT INTO variants (product_id, sku, price, stock, created_at)
         SELECT id, CONCAT('P', id), price, 1000000000, created_at FROM products ORDER BY id",
    )
    .execute(&pool)
    .await
    .unwrap();
    // The newest product sells in three sizes, each with its own stock.
    sqlx::query(
        "UPDATE variants SET options = '{\"size\":\"S\"}'
         WHERE product_id = (SELECT MAX(id) FROM products)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for size in ["M", "L"] {
        sqlx::query(
            "INSERT INTO variants (product_id, sku, options, price, stock)
             SELECT id, CONCAT('P', id, '-', ?), CONCAT('{\"size\":\"', ?, '\"}'), price, 1000000000
             FROM products WHERE id = (SELECT MAX(id) FROM products)",
        )
        .bind(size)
        .bind(size)
        .execute(&pool)
        .await
        .unwrap();
    }
    let hash = platform::password::hash(PASSWORD.into()).await.unwrap();
    let user = sqlx::query(
        "INSERT INTO users (name, email, password_hash) VALUES ('Bench', 'bench@example.com', ?)",
    )
    .bind(hash)
    .execute(&pool)
    .await
    .unwrap()
    .last_insert_id();
    let mut buyers = sqlx::QueryBuilder::new("INSERT INTO users (name, email, password_hash) ");
    buyers.push_values(0..BUYERS, |mut row, i| {
        // Tokens are issued to them directly: they never log in.
        row.push_bind("Buyer")
            .push_bind(format!("buyer{i}@example.com"))
            .push_bind("!no-password");
    });
    buyers.build().execute(&pool).await.unwrap();
    let order = sqlx::query("INSERT INTO orders (user_id, total, expires_at) VALUES (?, 1, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap()
        .last_insert_id();
    sqlx::query("INSERT INTO payments (order_id, amount, method) VALUES (?, 1, 'card')")
        .bind(order)
        .execute(&pool)
        .await
        .unwrap();
    pool
}
