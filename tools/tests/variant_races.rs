//! Races on one variant of a product that sells in two: its stock is held, taken and
//! returned exactly as a product's was, and its sibling is never touched. (Every race in
//! `races.rs` runs on variant rows too: a one-variant product's stock is its variant's.)

use serde_json::json;
use sqlx::MySqlPool;
use testkit::{TestResponse, TestUser, in_parallel};

mod common;
use common::Shop;

const ROUNDS: usize = 16;
const QUANTITY: u32 = 3;

/// A tee in two sizes, each with `stock` units: (product, small, medium).
async fn tee(shop: &Shop, stock: u32) -> (u64, u64, u64) {
    let product = shop.orders.product("Tee", "12", stock).await;
    let small: u64 = sqlx::query_scalar("SELECT id FROM variants WHERE product_id = ?")
        .bind(product)
        .fetch_one(shop.pool())
        .await
        .unwrap();
    let sku = format!("TEE-M-{product}");
    let medium = shop
        .orders
        .variant(product, &sku, r#"{"size":"M"}"#, "10", stock)
        .await;
    (product, small, medium)
}

async fn order(shop: &Shop, user: &TestUser, variant: u64) -> TestResponse {
    shop.orders
        .post("/orders")
        .token(&user.token)
        .json(json!({"items": [{"variant_id": variant, "quantity": QUANTITY}]}))
        .send()
        .await
}

async fn pending_order(shop: &Shop, variant: u64) -> (TestUser, u64) {
    let user = shop.orders.customer().await;
    let id = order(shop, &user, variant).await.expect(201)["id"]
        .as_u64()
        .unwrap();
    (user, id)
}

async fn cancel(shop: &Shop, user: &TestUser, order: u64) -> TestResponse {
    shop.orders
        .put(&format!("/orders/{order}"))
        .token(&user.token)
        .json(json!({"status": "cancelled"}))
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

async fn delete_account(shop: &Shop, user: &TestUser) -> TestResponse {
    shop.users
        .delete(&format!("/users/{}", user.id))
        .token(&user.token)
        .send()
        .await
}

async fn sweep(shop: &Shop) -> TestResponse {
    domain::housekeeping::sweep(shop.pool(), std::time::Duration::from_secs(30))
        .await
        .unwrap();
    TestResponse::empty(200)
}

async fn race(
    round: usize,
    a: impl Future<Output = TestResponse>,
    b: impl Future<Output = TestResponse>,
) -> (u16, u16) {
    let (a, b) = if round.is_multiple_of(2) {
        tokio::join!(a, b)
    } else {
        let (b, a) = tokio::join!(b, a);
        (a, b)
    };
    (a.status.as_u16(), b.status.as_u16())
}

/// Plays `round` [`ROUNDS`] times and fails listing every round that broke.
async fn rounds(race: &str, mut round: impl AsyncFnMut(usize) -> Result<(), String>) {
    let mut broken = Vec::new();
    for n in 0..ROUNDS {
        if let Err(why) = round(n).await {
            broken.push(format!("round {n}: {why}"));
        }
    }
    assert!(broken.is_empty(), "{race}: {}", broken.join("\n"));
}

fn expect(ok: bool, seen: String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(seen) }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn thirty_buyers_of_the_last_ten_units_of_a_variant_get_exactly_ten(pool: MySqlPool) {
    let shop = std::sync::Arc::new(Shop::new(pool));
    let (product, small, medium) = tee(&shop, 10).await;
    let mut buyers = Vec::new();
    for _ in 0..30 {
        buyers.push(shop.orders.customer().await);
    }
    let buyers = std::sync::Arc::new(buyers);
    let answers = in_parallel(30, |i| {
        let (shop, buyers) = (shop.clone(), buyers.clone());
        async move {
            shop.orders
                .post("/orders")
                .token(&buyers[i].token)
                .json(json!({"items": [{"variant_id": medium, "quantity": 1}]}))
                .send()
                .await
                .status
                .as_u16()
        }
    })
    .await;
    let sold = answers.iter().filter(|s| **s == 201).count();
    let refused = answers.iter().filter(|s| **s == 409).count();
    assert_eq!((sold, refused), (10, 20), "{answers:?}");
    assert_eq!(shop.orders.variant_stock(medium).await, 0);
    assert_eq!(
        shop.orders.variant_stock(small).await,
        10,
        "the other size untouched"
    );
    assert_eq!(shop.orders.stock(product).await, 10);
    let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_items WHERE variant_id = ?")
        .bind(medium)
        .fetch_one(shop.pool())
        .await
        .unwrap();
    assert_eq!(lines, 10, "one line per order kept, none for the refused");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn variant_deletion_racing_an_order_leaves_no_line_pointing_at_nothing(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let admin = shop.products.admin().await;
    let user = shop.orders.customer().await;
    rounds("variant deletion × order", async |round| {
        let (_, small, medium) = tee(&shop, 100).await;
        let deleting = shop
            .products
            .delete(&format!("/variants/{medium}"))
            .token(&admin.token)
            .send();
        let (placed, deleted) = race(round, order(&shop, &user, medium), deleting).await;
        let dangling: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM order_items i LEFT JOIN variants v ON v.id = i.variant_id
             WHERE i.variant_id IS NOT NULL AND v.id IS NULL",
        )
        .fetch_one(shop.pool())
        .await
        .unwrap();
        let small_stock = shop.orders.variant_stock(small).await;
        let ok =
            deleted == 204 && matches!(placed, 201 | 400) && dangling == 0 && small_stock == 100;
        expect(
            ok,
            format!("order {placed}, deletion {deleted}, dangling {dangling}, small {small_stock}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancel_racing_order_deletion_returns_a_variants_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let (_, small, medium) = tee(&shop, 10_000).await;
    rounds("cancel × order deletion", async |round| {
        let start = shop.orders.variant_stock(medium).await;
        let (user, id) = pending_order(&shop, medium).await;
        let (c, d) = race(
            round,
            cancel(&shop, &user, id),
            delete_order(&shop, &user, id),
        )
        .await;
        let end = shop.orders.variant_stock(medium).await;
        let ok = end == start
            && d == 204
            && matches!(c, 200 | 404)
            && shop.orders.variant_stock(small).await == 10_000;
        expect(
            ok,
            format!("cancel {c}, deletion {d}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_a_cancel_returns_a_variants_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let (_, _, medium) = tee(&shop, 10_000).await;
    rounds("account deletion × cancel", async |round| {
        let start = shop.orders.variant_stock(medium).await;
        let (user, id) = pending_order(&shop, medium).await;
        let (a, c) = race(
            round,
            delete_account(&shop, &user),
            cancel(&shop, &user, id),
        )
        .await;
        let end = shop.orders.variant_stock(medium).await;
        let ok = a == 204 && matches!(c, 200 | 401 | 404) && end == start;
        expect(
            ok,
            format!("account {a}, cancel {c}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn expiry_racing_a_cancel_returns_a_variants_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let (_, _, medium) = tee(&shop, 10_000).await;
    rounds("expiry × cancel", async |round| {
        let start = shop.orders.variant_stock(medium).await;
        let (user, id) = pending_order(&shop, medium).await;
        shop.orders.expire(id).await;
        let (s, c) = race(round, sweep(&shop), cancel(&shop, &user, id)).await;
        let end = shop.orders.variant_stock(medium).await;
        let cancels: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM order_status_history WHERE order_id = ? AND status = 'cancelled'",
        )
        .bind(id)
        .fetch_one(shop.pool())
        .await
        .unwrap();
        let ok = s == 200 && matches!(c, 200 | 409) && end == start && cancels == 1;
        expect(
            ok,
            format!("sweep {s}, cancel {c}, stock {start} -> {end}, cancels {cancels}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_a_checkout_of_a_variant_holds_nothing(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let (_, _, medium) = tee(&shop, 10_000).await;
    rounds("account deletion × checkout", async |round| {
        let start = shop.orders.variant_stock(medium).await;
        let user = shop.cart.customer().await;
        shop.cart
            .put(&format!("/users/{}/cart/variants/{medium}", user.id))
            .token(&user.token)
            .json(json!({"quantity": QUANTITY}))
            .send()
            .await
            .expect(200);
        let checkout = shop
            .cart
            .post(&format!("/users/{}/cart/checkout", user.id))
            .token(&user.token)
            .send();
        let (a, c) = race(round, delete_account(&shop, &user), checkout).await;
        let end = shop.orders.variant_stock(medium).await;
        let ok = a == 204 && matches!(c, 201 | 401 | 404) && end == start;
        expect(
            ok,
            format!("account {a}, checkout {c}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_order_deletion_returns_a_variants_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let (_, _, medium) = tee(&shop, 10_000).await;
    rounds("account deletion × order deletion", async |round| {
        let start = shop.orders.variant_stock(medium).await;
        let (user, id) = pending_order(&shop, medium).await;
        let (a, d) = race(
            round,
            delete_account(&shop, &user),
            delete_order(&shop, &user, id),
        )
        .await;
        let end = shop.orders.variant_stock(medium).await;
        let ok = a == 204 && matches!(d, 204 | 401 | 404) && end == start;
        expect(
            ok,
            format!("account {a}, order {d}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn expiry_racing_order_deletion_returns_a_variants_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let (_, _, medium) = tee(&shop, 10_000).await;
    rounds("expiry × order deletion", async |round| {
        let start = shop.orders.variant_stock(medium).await;
        let (user, id) = pending_order(&shop, medium).await;
        shop.orders.expire(id).await;
        let (s, d) = race(round, sweep(&shop), delete_order(&shop, &user, id)).await;
        let end = shop.orders.variant_stock(medium).await;
        let ok = s == 200 && d == 204 && end == start;
        expect(
            ok,
            format!("sweep {s}, deletion {d}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn variant_deletion_racing_a_checkout_keeps_stock_and_carts_straight(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let admin = shop.products.admin().await;
    rounds("variant deletion × checkout", async |round| {
        let (_, small, medium) = tee(&shop, 100).await;
        let user = shop.cart.customer().await;
        shop.cart
            .put(&format!("/users/{}/cart/variants/{medium}", user.id))
            .token(&user.token)
            .json(json!({"quantity": QUANTITY}))
            .send()
            .await
            .expect(200);
        let checkout = shop
            .cart
            .post(&format!("/users/{}/cart/checkout", user.id))
            .token(&user.token)
            .send();
        let deleting = shop
            .products
            .delete(&format!("/variants/{medium}"))
            .token(&admin.token)
            .send();
        let (c, d) = race(round, checkout, deleting).await;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cart_items WHERE variant_id = ?")
            .bind(medium)
            .fetch_one(shop.pool())
            .await
            .unwrap();
        let small_stock = shop.orders.variant_stock(small).await;
        // Checkout first: an order of the variant, unlinked by the deletion. Deletion
        // first: the cart is empty, and checkout finds nothing to order.
        let ok = d == 204 && matches!(c, 201 | 409) && left == 0 && small_stock == 100;
        expect(
            ok,
            format!("checkout {c}, deletion {d}, cart lines left {left}"),
        )
    })
    .await;
}
