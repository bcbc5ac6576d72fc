//! Deadlocks that a retry would hide: pairs of paths that took the same rows in opposite
//! orders, or gap locks that made neighbouring users' requests wait for each other. Each
//! test runs its pair at once, many times, and asserts that no transaction had to be run
//! again ([`platform::db::retries`]) as well as that every answer is one the rules allow.
//!
//! The retry counter is per process, so the tests of this file take turns.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::{TestResponse, TestUser, in_parallel};
use tokio::sync::Mutex;

mod common;
use common::Shop;

/// Rounds per pair: enough for opposite lock orders to meet many times over.
const ROUNDS: usize = 12;
/// Requests that run at once in each round.
const WIDTH: usize = 8;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The shop over a pool wide enough for every request of a round to hold a connection at
/// once (the test pool has five), so that lock waits, not the pool, order them.
fn wide_shop(pool: &MySqlPool) -> std::sync::Arc<Shop> {
    let options = (*pool.connect_options()).clone();
    std::sync::Arc::new(Shop::new(platform::db::pool_with(
        options,
        2 * WIDTH as u32 + 4,
    )))
}

/// Runs `round` [`ROUNDS`] times and returns how many transactions were run again while it
/// did, with every answer that broke the rules.
async fn retries_during(mut round: impl AsyncFnMut(usize) -> Vec<String>) -> (u64, Vec<String>) {
    let before = platform::db::retries();
    let mut broken = Vec::new();
    for n in 0..ROUNDS {
        for why in round(n).await {
            broken.push(format!("round {n}: {why}"));
        }
    }
    (platform::db::retries() - before, broken)
}

#[track_caller]
fn assert_no_retries(pair: &str, (retries, broken): (u64, Vec<String>)) {
    assert!(
        broken.is_empty(),
        "{pair}: answers outside the rules:\n{}",
        broken.join("\n")
    );
    assert_eq!(retries, 0, "{pair}: {retries} transactions were retried");
}

fn code(response: &TestResponse) -> u16 {
    response.status.as_u16()
}

impl Shop {
    async fn put_in_cart(&self, user: &TestUser, product: u64) {
        self.cart
            .put(&format!("/users/{}/cart/items/{product}", user.id))
            .token(&user.token)
            .json(json!({"quantity": 1}))
            .send()
            .await
            .expect(200);
    }

    async fn delete_product(&self, admin: &TestUser, product: u64) -> TestResponse {
        self.products
            .delete(&format!("/products/{product}"))
            .token(&admin.token)
            .send()
            .await
    }
}

/// Checkout takes the cart lines and then the products; deleting a product must take them
/// in the same order, not the product first and its cart lines by cascade.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn product_deletion_racing_checkouts_never_deadlocks(pool: MySqlPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let shop = wide_shop(&pool);
    let admin = std::sync::Arc::new(shop.products.admin().await);
    let seen = retries_during(async |_| {
        let doomed = shop.orders.product("Doomed", "2.00", 1000).await;
        let kept = shop.orders.product("Kept", "3.00", 1000).await;
        let mut buyers = Vec::new();
        for _ in 0..WIDTH {
            let buyer = shop.cart.customer().await;
            shop.put_in_cart(&buyer, doomed).await;
            shop.put_in_cart(&buyer, kept).await;
            buyers.push(std::sync::Arc::new(buyer));
        }
        let answers = in_parallel(WIDTH + 1, |i| {
            let (shop, admin) = (shop.clone(), admin.clone());
            let buyer = buyers.get(i).cloned();
            async move {
                match buyer {
                    Some(buyer) => {
                        let r = shop
                            .cart
                            .post(&format!("/users/{}/cart/checkout", buyer.id))
                            .token(&buyer.token)
                            .send()
                            .await;
                        ("checkout", code(&r))
                    }
                    None => ("deletion", code(&shop.delete_product(&admin, doomed).await)),
                }
            }
        })
        .await;
        answers
            .into_iter()
            .filter(|(what, status)| match *what {
                "deletion" => *status != 204,
                _ => !matches!(status, 201 | 409),
            })
            .map(|(what, status)| format!("{what} answered {status}"))
            .collect()
    })
    .await;
    assert_no_retries("product deletion × checkout", seen);
}

/// Setting a cart line writes the line and then checks its product; deleting the product
/// takes its cart lines first, and must not hold gaps a new line would have to wait for.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn product_deletion_racing_cart_lines_never_deadlocks(pool: MySqlPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let shop = wide_shop(&pool);
    let admin = std::sync::Arc::new(shop.products.admin().await);
    let mut buyers = Vec::new();
    for _ in 0..WIDTH {
        buyers.push(std::sync::Arc::new(shop.cart.customer().await));
    }
    let seen = retries_during(async |_| {
        let doomed = shop.orders.product("Doomed", "2.00", 1000).await;
        // Half the buyers already have it in their cart; the others are adding it.
        for buyer in buyers.iter().step_by(2) {
            shop.put_in_cart(buyer, doomed).await;
        }
        let answers = in_parallel(WIDTH + 1, |i| {
            let (shop, admin) = (shop.clone(), admin.clone());
            let buyer = buyers.get(i).cloned();
            async move {
                match buyer {
                    Some(buyer) => {
                        let r = shop
                            .cart
                            .put(&format!("/users/{}/cart/items/{doomed}", buyer.id))
                            .token(&buyer.token)
                            .json(json!({"quantity": 2}))
                            .send()
                            .await;
                        ("cart line", code(&r))
                    }
                    None => ("deletion", code(&shop.delete_product(&admin, doomed).await)),
                }
            }
        })
        .await;
        let dangling: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM cart_items c LEFT JOIN products p ON p.id = c.product_id
             WHERE p.id IS NULL",
        )
        .fetch_one(shop.pool())
        .await
        .unwrap();
        let mut broken: Vec<String> = answers
            .into_iter()
            .filter(|(what, status)| match *what {
                "deletion" => *status != 204,
                _ => !matches!(status, 200 | 404),
            })
            .map(|(what, status)| format!("{what} answered {status}"))
            .collect();
        if dangling > 0 {
            broken.push(format!("{dangling} cart lines name no product"));
        }
        broken
    })
    .await;
    assert_no_retries("product deletion × cart line", seen);
}

/// Many customers using an `Idempotency-Key` for the first time, at once: their keys are
/// neighbours in the key table, and claiming one must not lock the gaps around it.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn many_customers_first_keys_at_once_never_deadlock(pool: MySqlPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let shop = wide_shop(&pool);
    let mug = shop.orders.product("Mug", "2.00", 100_000).await;
    let seen = retries_during(async |round| {
        let mut buyers = Vec::new();
        for _ in 0..WIDTH {
            buyers.push(std::sync::Arc::new(shop.orders.customer().await));
        }
        let key = format!("first-{round}");
        let answers = in_parallel(WIDTH, |i| {
            let (shop, buyer, key) = (shop.clone(), buyers[i].clone(), key.clone());
            async move {
                let r = shop
                    .orders
                    .post("/orders")
                    .token(&buyer.token)
                    .header("idempotency-key", &key)
                    .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
                    .send()
                    .await;
                code(&r)
            }
        })
        .await;
        answers
            .into_iter()
            .filter(|status| *status != 201)
            .map(|status| format!("an order answered {status}"))
            .collect()
    })
    .await;
    assert_no_retries("first idempotency keys", seen);
}

/// One customer's orders at once, each under its own key: the key's insert and the count of
/// pending orders both want the customer's row, and must not upgrade a shared lock to an
/// exclusive one (two holders of the shared lock would wait for each other).
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn one_customers_keyed_orders_at_once_never_deadlock(pool: MySqlPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let shop = wide_shop(&pool);
    let mug = shop.orders.product("Mug", "2.00", 100_000).await;
    let seen = retries_during(async |round| {
        let buyer = std::sync::Arc::new(shop.orders.customer().await);
        let answers = in_parallel(WIDTH, |i| {
            let (shop, buyer) = (shop.clone(), buyer.clone());
            async move {
                let r = shop
                    .orders
                    .post("/orders")
                    .token(&buyer.token)
                    .header("idempotency-key", &format!("order-{round}-{i}"))
                    .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
                    .send()
                    .await;
                code(&r)
            }
        })
        .await;
        answers
            .into_iter()
            .filter(|status| *status != 201)
            .map(|status| format!("an order answered {status}"))
            .collect()
    })
    .await;
    assert_no_retries("one customer's keyed orders", seen);
}

/// An account deletion returns its pending orders' stock and drops its cart; a product
/// deletion drops the product's cart lines and unlinks its order lines. Both touch the
/// same cart line, order line and product.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_product_deletion_never_deadlocks(pool: MySqlPool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let shop = wide_shop(&pool);
    let admin = std::sync::Arc::new(shop.products.admin().await);
    let seen = retries_during(async |_| {
        let doomed = shop.orders.product("Doomed", "2.00", 1000).await;
        let mut customers = Vec::new();
        for _ in 0..WIDTH {
            let customer = shop.cart.customer().await;
            shop.orders
                .post("/orders")
                .token(&customer.token)
                .json(json!({"items": [{"product_id": doomed, "quantity": 1}]}))
                .send()
                .await
                .expect(201);
            shop.put_in_cart(&customer, doomed).await;
            customers.push(std::sync::Arc::new(customer));
        }
        let answers = in_parallel(WIDTH + 1, |i| {
            let (shop, admin) = (shop.clone(), admin.clone());
            let customer = customers.get(i).cloned();
            async move {
                match customer {
                    Some(customer) => {
                        let r = shop
                            .users
                            .delete(&format!("/users/{}", customer.id))
                            .token(&customer.token)
                            .send()
                            .await;
                        ("account deletion", code(&r))
                    }
                    None => (
                        "product deletion",
                        code(&shop.delete_product(&admin, doomed).await),
                    ),
                }
            }
        })
        .await;
        answers
            .into_iter()
            .filter(|(_, status)| *status != 204)
            .map(|(what, status)| format!("{what} answered {status}"))
            .collect()
    })
    .await;
    assert_no_retries("account deletion × product deletion", seen);
}
