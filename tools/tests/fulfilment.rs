//! Orders a shop can ship: the address an order keeps, its history and tracking number,
//! across the users, orders, cart and payments functions over one database.

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestResponse, TestUser, in_parallel};

mod common;
use common::Shop;

impl Shop {
    async fn address(&self, user: &TestUser, name: &str) -> u64 {
        let mut body = home();
        body["name"] = json!(name);
        self.users
            .post(&format!("/users/{}/addresses", user.id))
            .token(&user.token)
            .json(body)
            .send()
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap()
    }

    async fn place(&self, user: &TestUser, body: Value) -> TestResponse {
        self.orders
            .post("/orders")
            .token(&user.token)
            .json(body)
            .send()
            .await
    }

    async fn show(&self, user: &TestUser, order: u64) -> Value {
        self.orders
            .get(&format!("/orders/{order}"))
            .token(&user.token)
            .send()
            .await
            .expect(200)
            .clone()
    }

    async fn set(&self, user: &TestUser, order: u64, body: Value) -> TestResponse {
        self.orders
            .put(&format!("/orders/{order}"))
            .token(&user.token)
            .json(body)
            .send()
            .await
    }

    async fn pay(&self, user: &TestUser, order: u64, amount: f64) -> TestResponse {
        self.payments
            .post("/payments")
            .token(&user.token)
            .json(json!({"order_id": order, "amount": amount, "method": "card"}))
            .send()
            .await
    }
}

fn home() -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "12 Rue de la Paix",
        "line2": "Bâtiment B",
        "postal_code": "75002",
        "city": "Paris",
        "country": "fr",
        "phone": "+33 1 23 45 67 89"
    })
}

fn items(product: u64, quantity: u32) -> Value {
    json!([{"product_id": product, "quantity": quantity}])
}

/// `(status, actor)` of each history entry, oldest first.
fn timeline(order: &Value) -> Vec<(String, String)> {
    order["history"]
        .as_array()
        .expect("an order has a history")
        .iter()
        .map(|entry| {
            assert!(entry["at"].is_string(), "every entry has its time: {entry}");
            (
                entry["status"].as_str().unwrap().to_string(),
                entry["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn steps(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(s, a)| (s.to_string(), a.to_string()))
        .collect()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_order_keeps_its_own_copy_of_a_saved_address(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "4.00", 10).await;
    let home_id = shop.address(&ada, "Ada at home").await;

    let order = shop
        .place(
            &ada,
            json!({"items": items(mug, 1), "shipping_address_id": home_id}),
        )
        .await
        .expect(201)
        .clone();
    let id = order["id"].as_u64().unwrap();
    assert_eq!(
        order["shipping_address"],
        json!({
            "name": "Ada at home", "line1": "12 Rue de la Paix", "line2": "Bâtiment B",
            "postal_code": "75002", "city": "Paris", "country": "FR", "phone": "+33 1 23 45 67 89"
        })
    );
    assert_eq!(order["tracking_number"], Value::Null);

    shop.users
        .delete(&format!("/users/{}/addresses/{home_id}", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    let later = shop.show(&ada, id).await;
    assert_eq!(
        later["shipping_address"], order["shipping_address"],
        "deleting the address changes nothing on the order"
    );

    // Orders of digital goods ship nowhere: every earlier request still works.
    let digital = shop
        .place(&ada, json!({"items": items(mug, 1)}))
        .await
        .expect(201)
        .clone();
    assert_eq!(digital["shipping_address"], Value::Null);
    assert_eq!(timeline(&digital), steps(&[("pending", "customer")]));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_inline_address_is_checked_field_by_field(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "4.00", 10).await;

    let mut broken = home();
    broken["country"] = json!("XX");
    broken["name"] = json!("");
    let response = shop
        .place(
            &ada,
            json!({"items": items(mug, 0), "shipping_address": broken}),
        )
        .await;
    response.invalid_field("shipping_address.country");
    response.invalid_field("shipping_address.name");
    response.invalid_field("items[0].quantity");

    let both = shop
        .place(
            &ada,
            json!({"items": items(mug, 1), "shipping_address": home(), "shipping_address_id": 1}),
        )
        .await;
    both.invalid_field("shipping_address");
    assert_eq!(shop.orders.count("orders").await, 0);
    assert_eq!(shop.orders.stock(mug).await, 10);

    let placed = shop
        .place(
            &ada,
            json!({"items": items(mug, 1), "shipping_address": home()}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(placed["shipping_address"]["country"], "FR");
    assert_eq!(
        shop.orders.count("addresses").await,
        0,
        "not added to the book"
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn only_the_owners_addresses_ship_and_a_refusal_takes_no_stock(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let bob = shop.orders.customer().await;
    let admin = shop.orders.admin().await;
    let mug = shop.orders.product("Mug", "4.00", 10).await;
    let adas = shop.address(&ada, "Ada").await;
    let bobs = shop.address(&bob, "Bob").await;

    for (caller, body) in [
        (
            &ada,
            json!({"items": items(mug, 2), "shipping_address_id": bobs}),
        ),
        (
            &ada,
            json!({"items": items(mug, 2), "shipping_address_id": 424242}),
        ),
        // An admin ordering for Ada ships to Ada's addresses, not to someone else's.
        (
            &admin,
            json!({"user_id": ada.id, "items": items(mug, 2), "shipping_address_id": bobs}),
        ),
    ] {
        shop.place(caller, body)
            .await
            .invalid_field("shipping_address_id");
    }
    assert_eq!(shop.orders.stock(mug).await, 10);
    assert_eq!(shop.orders.count("orders").await, 0);

    let for_ada = shop
        .place(
            &admin,
            json!({"user_id": ada.id, "items": items(mug, 2), "shipping_address_id": adas}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(for_ada["shipping_address"]["name"], "Ada");
    assert_eq!(timeline(&for_ada), steps(&[("pending", "admin")]));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn checkout_ships_to_an_address_too(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let bob = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "4.00", 10).await;
    let bobs = shop.address(&bob, "Bob").await;
    let adas = shop.address(&ada, "Ada").await;
    shop.cart
        .put(&format!("/users/{}/cart/items/{mug}", ada.id))
        .token(&ada.token)
        .json(json!({"quantity": 3}))
        .send()
        .await
        .expect(200);
    let checkout = format!("/users/{}/cart/checkout", ada.id);

    let refused = shop
        .cart
        .post(&checkout)
        .token(&ada.token)
        .json(json!({"shipping_address_id": bobs}))
        .send()
        .await;
    refused.invalid_field("shipping_address_id");
    shop.cart
        .post(&checkout)
        .token(&ada.token)
        .json(json!({"shipping_address": {"name": "Ada"}}))
        .send()
        .await
        .problem(400);
    assert_eq!(shop.orders.stock(mug).await, 10);
    assert_eq!(
        shop.orders.count("cart_items").await,
        1,
        "the cart is intact"
    );

    let order = shop
        .cart
        .post(&checkout)
        .token(&ada.token)
        .json(json!({"shipping_address_id": adas}))
        .send()
        .await
        .expect(201)
        .clone();
    assert_eq!(order["shipping_address"]["name"], "Ada");
    assert_eq!(order["items"][0]["quantity"], 3);
    assert_eq!(shop.orders.stock(mug).await, 7);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_idempotency_key_covers_the_address(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "4.00", 10).await;
    let first = shop.address(&ada, "Home").await;
    let second = shop.address(&ada, "Office").await;
    let send = |key: &'static str, body: Value| {
        let (shop, ada) = (&shop, &ada);
        async move {
            shop.orders
                .post("/orders")
                .token(&ada.token)
                .header("idempotency-key", key)
                .json(body)
                .send()
                .await
        }
    };

    let body = json!({"items": items(mug, 1), "shipping_address_id": first});
    let placed = send("order-1", body.clone()).await.expect(201).clone();
    let replayed = send("order-1", body).await.expect(201).clone();
    assert_eq!(replayed["id"], placed["id"]);
    let other = send(
        "order-1",
        json!({"items": items(mug, 1), "shipping_address_id": second}),
    )
    .await;
    assert_eq!(
        other.problem(409)["type"],
        "/problems/idempotency-key-reused"
    );
    let inline = send(
        "order-1",
        json!({"items": items(mug, 1), "shipping_address": home()}),
    )
    .await;
    inline.problem(409);

    // A key first used without an address does not cover one with an address.
    send("order-2", json!({"items": items(mug, 1)}))
        .await
        .expect(201);
    send(
        "order-2",
        json!({"items": items(mug, 1), "shipping_address_id": first}),
    )
    .await
    .problem(409);
    assert_eq!(shop.orders.count("orders").await, 2);
    assert_eq!(shop.orders.stock(mug).await, 8);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_history_names_every_status_and_who_moved_it(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let admin = shop.orders.admin().await;
    let mug = shop.orders.product("Mug", "5.00", 10).await;
    let id = shop
        .place(&ada, json!({"items": items(mug, 2)}))
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();

    shop.pay(&ada, id, 4.0).await.expect(201);
    assert_eq!(
        timeline(&shop.show(&ada, id).await),
        steps(&[("pending", "customer")]),
        "a part payment changes no status"
    );
    shop.pay(&ada, id, 6.0).await.expect(201);
    shop.set(&admin, id, json!({"status": "processing"}))
        .await
        .expect(200);
    let shipped = shop
        .set(
            &admin,
            id,
            json!({"status": "shipped", "tracking_number": "1Z999AA10123456784"}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(shipped["tracking_number"], "1Z999AA10123456784");
    let delivered = shop
        .set(&admin, id, json!({"status": "delivered"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        timeline(&delivered),
        steps(&[
            ("pending", "customer"),
            ("paid", "customer"),
            ("processing", "admin"),
            ("shipped", "admin"),
            ("delivered", "admin"),
        ])
    );
    assert_eq!(delivered["tracking_number"], "1Z999AA10123456784");
    let times: Vec<&str> = delivered["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // Lists stay summaries.
    let list = shop
        .orders
        .get(&format!("/users/{}/orders", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    let summary = list["items"][0].as_object().unwrap();
    assert!(!summary.contains_key("history") && !summary.contains_key("shipping_address"));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_tracking_number_comes_with_shipping_from_an_admin(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let admin = shop.orders.admin().await;
    let mug = shop.orders.product("Mug", "5.00", 10).await;
    let id = shop
        .place(&ada, json!({"items": items(mug, 1)}))
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();
    shop.pay(&ada, id, 5.0).await.expect(201);
    shop.set(&admin, id, json!({"status": "processing"}))
        .await
        .expect(200);

    for (body, field) in [
        (
            json!({"status": "processing", "tracking_number": "1Z"}),
            "tracking_number",
        ),
        (
            json!({"status": "shipped", "tracking_number": ""}),
            "tracking_number",
        ),
        (
            json!({"status": "shipped", "tracking_number": "  "}),
            "tracking_number",
        ),
        (
            json!({"status": "shipped", "tracking_number": "x".repeat(101)}),
            "tracking_number",
        ),
        (
            json!({"status": "shipped", "tracking_number": 12}),
            "tracking_number",
        ),
    ] {
        shop.set(&admin, id, body).await.invalid_field(field);
    }
    let unchanged = shop.show(&admin, id).await;
    assert_eq!(unchanged["status"], "processing");
    assert_eq!(unchanged["tracking_number"], Value::Null);

    // Shipped without a number is allowed; an admin adds or corrects it later, which
    // enters no new status.
    shop.set(&admin, id, json!({"status": "shipped"}))
        .await
        .expect(200);
    shop.set(
        &ada,
        id,
        json!({"status": "shipped", "tracking_number": "MINE"}),
    )
    .await
    .problem(403);
    let corrected = shop
        .set(
            &admin,
            id,
            json!({"status": "shipped", "tracking_number": "JD014600006281234567"}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(corrected["tracking_number"], "JD014600006281234567");
    assert_eq!(timeline(&corrected).len(), 4);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancels_name_the_customer_the_admin_or_the_system(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let admin = shop.orders.admin().await;
    let mug = shop.orders.product("Mug", "5.00", 10).await;
    let place = || async {
        shop.place(&ada, json!({"items": items(mug, 1)}))
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap()
    };

    let by_customer = place().await;
    let cancelled = shop
        .set(&ada, by_customer, json!({"status": "cancelled"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        timeline(&cancelled),
        steps(&[("pending", "customer"), ("cancelled", "customer")])
    );

    let by_admin = place().await;
    shop.pay(&ada, by_admin, 5.0).await.expect(201);
    let refunded = shop
        .set(&admin, by_admin, json!({"status": "cancelled"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        timeline(&refunded),
        steps(&[
            ("pending", "customer"),
            ("paid", "customer"),
            ("cancelled", "admin")
        ])
    );

    // An expired hold, seen by a read, and one found by the sweep.
    let read = place().await;
    shop.orders.expire(read).await;
    assert_eq!(
        timeline(&shop.show(&ada, read).await),
        steps(&[("pending", "customer"), ("cancelled", "system")])
    );
    let swept = place().await;
    shop.orders.expire(swept).await;
    assert_eq!(
        domain::orders::expire_due(shop.pool(), 100).await.unwrap(),
        1
    );
    assert_eq!(
        timeline(&shop.show(&ada, swept).await),
        steps(&[("pending", "customer"), ("cancelled", "system")])
    );
    // A customer's late cancel of an expired order is the system's cancel, once.
    let late = place().await;
    shop.orders.expire(late).await;
    let after = shop
        .set(&ada, late, json!({"status": "cancelled"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        timeline(&after),
        steps(&[("pending", "customer"), ("cancelled", "system")])
    );
    assert_eq!(
        shop.orders.stock(mug).await,
        10,
        "every cancel returned its unit, once"
    );
}

/// Rounds per race, each on a fresh order.
const ROUNDS: usize = 16;

/// Everything that can move one order at once: the customer cancelling twice, an admin
/// cancelling, the full payment, reads settling an expired hold and two sweeps. Whatever
/// wins, the history ends with the order's status, enters each status once, and the
/// stock comes back at most once.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_history_agrees_with_the_status_under_concurrency(pool: MySqlPool) {
    let shop = Arc::new(Shop::new(pool));
    let ada = Arc::new(shop.orders.customer().await);
    let admin = Arc::new(shop.orders.admin().await);
    let mug = shop.orders.product("Mug", "5.00", 1000).await;

    for round in 0..ROUNDS {
        let id = shop
            .place(&ada, json!({"items": items(mug, 2)}))
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap();
        let expired = round % 2 == 1;
        if expired {
            shop.orders.expire(id).await;
        }
        let before = shop.orders.stock(mug).await;
        in_parallel(7, |task| {
            let (shop, ada, admin) = (shop.clone(), ada.clone(), admin.clone());
            async move {
                let cancel = json!({"status": "cancelled"});
                match task {
                    0 | 1 => drop(shop.set(&ada, id, cancel).await),
                    2 => drop(shop.set(&admin, id, cancel).await),
                    3 => drop(shop.pay(&ada, id, 10.0).await),
                    4 => drop(shop.show(&ada, id).await),
                    _ => drop(domain::orders::expire_due(shop.pool(), 10).await.unwrap()),
                }
            }
        })
        .await;

        let order = shop.show(&admin, id).await;
        let entries = timeline(&order);
        let statuses: Vec<&str> = entries.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            statuses.last().copied(),
            order["status"].as_str(),
            "round {round}: {entries:?}"
        );
        assert_eq!(
            order["status"], "cancelled",
            "round {round}: every path cancels"
        );
        assert!(
            statuses == ["pending", "cancelled"] || statuses == ["pending", "paid", "cancelled"],
            "round {round}: each status entered once: {entries:?}"
        );
        if expired {
            assert_eq!(entries[1], ("cancelled".into(), "system".into()));
        }
        assert_eq!(
            shop.orders.stock(mug).await,
            before + 2,
            "round {round}: the stock came back once"
        );
    }
}

/// Orders placed before histories were kept get one: their creation, and the status they
/// have now (moved by the system, since who moved them is not known).
#[sqlx::test(migrations = false)]
async fn orders_from_before_get_their_history(pool: MySqlPool) {
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let earlier = std::env::temp_dir().join(format!("migrations-before-{}", std::process::id()));
    std::fs::create_dir_all(&earlier).unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "20261202000001" {
            std::fs::copy(&path, earlier.join(name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    std::fs::remove_dir_all(&earlier).unwrap();
    sqlx::query(
        "INSERT INTO users (id, name, email, password_hash) VALUES (1, 'Ada', 'ada@example.test', 'x')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, total, expires_at, created_at, updated_at) VALUES
            (1, 1, 'pending', 5, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, '2026-11-01', '2026-11-01'),
            (2, 1, 'shipped', 5, UTC_TIMESTAMP(6), '2026-11-02', '2026-11-03')",
    )
    .execute(&pool)
    .await
    .unwrap();

    domain::MIGRATOR.run(&pool).await.unwrap();

    let history: Vec<(u64, String, String, String)> = sqlx::query_as(
        "SELECT order_id, CAST(status AS CHAR), CAST(actor AS CHAR),
                DATE_FORMAT(entered_at, '%Y-%m-%d')
         FROM order_status_history ORDER BY order_id, id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected = [
        (1, "pending", "customer", "2026-11-01"),
        (2, "pending", "customer", "2026-11-02"),
        (2, "shipped", "system", "2026-11-03"),
    ]
    .map(|(id, s, a, d)| (id, s.to_string(), a.to_string(), d.to_string()));
    assert_eq!(history, expected);
}
