//! Discount usage under concurrency: a usage limit and a per-customer limit are never passed
//! however many orders use a code at once, and a use comes back exactly once whichever of
//! cancel, expiry and account deletion reaches a discounted order first.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::{TestResponse, TestUser, in_parallel};

mod common;
use common::Shop;

/// Rounds of the give-back race: enough for an unguarded give-back to be caught many times.
const ROUNDS: usize = 24;

async fn discount(shop: &Shop, code: &str, extra: &str) -> u64 {
    let id = sqlx::query(
        "INSERT INTO discounts (code, kind, value, starts_at) VALUES (?, 'percent', 10, UTC_TIMESTAMP(6))",
    )
    .bind(code)
    .execute(shop.pool())
    .await
    .unwrap()
    .last_insert_id();
    if !extra.is_empty() {
        sqlx::query(&format!("UPDATE discounts SET {extra} WHERE id = ?"))
            .bind(id)
            .execute(shop.pool())
            .await
            .unwrap();
    }
    id
}

async fn times_used(shop: &Shop, id: u64) -> u32 {
    sqlx::query_scalar("SELECT times_used FROM discounts WHERE id = ?")
        .bind(id)
        .fetch_one(shop.pool())
        .await
        .unwrap()
}

async fn discounted_orders(shop: &Shop, id: u64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE discount_id = ?")
        .bind(id)
        .fetch_one(shop.pool())
        .await
        .unwrap()
}

async fn place(shop: &Shop, user: &TestUser, product: u64, code: &str) -> TestResponse {
    shop.orders
        .post("/orders")
        .token(&user.token)
        .json(json!({"items": [{"product_id": product, "quantity": 1}], "discount_code": code}))
        .send()
        .await
}

/// Counts 201s and the 409s that refuse the code; any other answer is listed.
fn tally(responses: &[TestResponse]) -> (usize, usize, Vec<String>) {
    let mut placed = 0;
    let mut refused = 0;
    let mut other = Vec::new();
    for response in responses {
        let kind = response.body["type"].as_str().unwrap_or_default();
        match response.status.as_u16() {
            201 => placed += 1,
            409 if kind.ends_with("discount-not-applicable") => refused += 1,
            status => other.push(format!("{status} {}", response.body)),
        }
    }
    (placed, refused, other)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn forty_parallel_orders_for_a_code_limited_to_ten_discount_exactly_ten(pool: MySqlPool) {
    let shop = std::sync::Arc::new(Shop::new(pool));
    let mug = shop.orders.product("Mug", "10", 1000).await;
    let code = discount(&shop, "TEN-ONLY", "usage_limit = 10").await;
    let mut buyers = Vec::new();
    for _ in 0..40 {
        buyers.push(shop.orders.customer().await);
    }
    let buyers = std::sync::Arc::new(buyers);
    let responses = in_parallel(40, |i| {
        let (shop, buyers) = (shop.clone(), buyers.clone());
        async move { place(&shop, &buyers[i], mug, "TEN-ONLY").await }
    })
    .await;
    let (placed, refused, other) = tally(&responses);
    assert_eq!((placed, refused), (10, 30), "other answers: {other:?}");
    assert_eq!(times_used(&shop, code).await, 10);
    assert_eq!(discounted_orders(&shop, code).await, 10);
    assert_eq!(
        shop.orders.count("orders").await,
        10,
        "a refused code places nothing"
    );
    assert_eq!(shop.orders.stock(mug).await, 990);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn ten_parallel_orders_of_one_customer_use_a_once_per_customer_code_once(pool: MySqlPool) {
    let shop = std::sync::Arc::new(Shop::new(pool));
    let mug = shop.orders.product("Mug", "10", 1000).await;
    let code = discount(&shop, "ONCE-EACH", "per_customer_limit = 1").await;
    let ada = std::sync::Arc::new(shop.orders.customer().await);
    let responses = in_parallel(10, |_| {
        let (shop, ada) = (shop.clone(), ada.clone());
        async move { place(&shop, &ada, mug, "ONCE-EACH").await }
    })
    .await;
    let (placed, refused, other) = tally(&responses);
    assert_eq!((placed, refused), (1, 9), "other answers: {other:?}");
    assert_eq!(times_used(&shop, code).await, 1);
    assert_eq!(discounted_orders(&shop, code).await, 1);
}

/// One sweep, as the scheduled function runs it.
async fn sweep(shop: &Shop) -> TestResponse {
    domain::housekeeping::sweep(shop.pool(), std::time::Duration::from_secs(30))
        .await
        .unwrap();
    TestResponse::empty(200)
}

/// Runs three requests at once, the one polled first turning with the round.
async fn race3<A, B, C>(
    round: usize,
    a: A,
    b: B,
    c: C,
) -> (TestResponse, TestResponse, TestResponse)
where
    A: std::future::Future<Output = TestResponse>,
    B: std::future::Future<Output = TestResponse>,
    C: std::future::Future<Output = TestResponse>,
{
    match round % 3 {
        0 => tokio::join!(a, b, c),
        1 => {
            let (b, c, a) = tokio::join!(b, c, a);
            (a, b, c)
        }
        _ => {
            let (c, a, b) = tokio::join!(c, a, b);
            (a, b, c)
        }
    }
}

/// A new customer's pending order using `code`; `expired` runs its hold out.
async fn discounted_order(shop: &Shop, product: u64, code: &str, expired: bool) -> (TestUser, u64) {
    let user = shop.orders.customer().await;
    let order = place(shop, &user, product, code).await.expect(201)["id"]
        .as_u64()
        .unwrap();
    if expired {
        shop.orders.expire(order).await;
    }
    (user, order)
}

async fn cancel(shop: &Shop, user: &TestUser, order: u64) -> TestResponse {
    shop.orders
        .put(&format!("/orders/{order}"))
        .token(&user.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
}

async fn delete_account(shop: &Shop, user: &TestUser) -> TestResponse {
    shop.users
        .delete(&format!("/users/{}", user.id))
        .token(&user.token)
        .send()
        .await
}

async fn delete_order(shop: &Shop, user: &TestUser, order: u64) -> TestResponse {
    shop.orders
        .delete(&format!("/orders/{order}"))
        .token(&user.token)
        .send()
        .await
}

/// Plays `round` [`ROUNDS`] times and fails listing every round that broke.
async fn rounds(race: &str, mut round: impl AsyncFnMut(usize) -> Result<(), String>) {
    let mut broken = Vec::new();
    for n in 0..ROUNDS {
        if let Err(why) = round(n).await {
            broken.push(format!("round {n}: {why}"));
        }
    }
    assert!(
        broken.is_empty(),
        "{race}: {} of {ROUNDS} rounds broke:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancel_expiry_and_account_deletion_give_a_use_back_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", "10", 10_000).await;
    // Another customer's order keeps one use held throughout: a double give-back shows.
    let code = discount(&shop, "RACE", "").await;
    discounted_order(&shop, mug, "RACE", false).await;
    rounds("cancel × expiry × account deletion", async |round| {
        let (user, order) = discounted_order(&shop, mug, "RACE", true).await;
        let (cancelled, _, account) = race3(
            round,
            cancel(&shop, &user, order),
            sweep(&shop),
            delete_account(&shop, &user),
        )
        .await;
        let used = times_used(&shop, code).await;
        let ok = used == 1
            && account.status.as_u16() == 204
            && matches!(cancelled.status.as_u16(), 200 | 401 | 404);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "times_used {used}, cancel {}, account {}",
                cancelled.status, account.status
            ))
        }
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancel_order_deletion_and_account_deletion_give_a_use_back_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", "10", 10_000).await;
    let code = discount(&shop, "RACE", "").await;
    discounted_order(&shop, mug, "RACE", false).await;
    rounds(
        "cancel × order deletion × account deletion",
        async |round| {
            let (user, order) = discounted_order(&shop, mug, "RACE", false).await;
            let (cancelled, removed, account) = race3(
                round,
                cancel(&shop, &user, order),
                delete_order(&shop, &user, order),
                delete_account(&shop, &user),
            )
            .await;
            let used = times_used(&shop, code).await;
            if used == 1 && account.status.as_u16() == 204 {
                Ok(())
            } else {
                Err(format!(
                    "times_used {used}, cancel {}, delete {}, account {}",
                    cancelled.status, removed.status, account.status
                ))
            }
        },
    )
    .await;
}
