//! The outbox across functions: every committed change the contract lists has exactly one
//! event, written in its transaction, and a change that rolls back (a stock refusal, an
//! idempotent replay, a race lost to a deletion) has none.
//!
//! The database itself says what was committed (order history, payments, stock levels);
//! [`Shop::outbox_matches`] compares the events with it after every round of each race.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestResponse, TestUser, in_parallel};

mod common;
use common::Shop;

const ROUNDS: usize = 12;

impl Shop {
    /// Every event, oldest first, as `(type, data)`.
    async fn events(&self) -> Vec<(String, Value)> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT type, data FROM events ORDER BY seq")
                .fetch_all(self.pool())
                .await
                .unwrap();
        rows.into_iter()
            .map(|(kind, data)| (kind, serde_json::from_str(&data).unwrap()))
            .collect()
    }

    async fn kinds(&self) -> Vec<String> {
        self.events().await.into_iter().map(|(k, _)| k).collect()
    }

    /// Compares the events with what the database committed:
    /// - one `order.<status>` per history entry of a status the contract announces (every
    ///   order is created `pending`, so `order.created` per order still in the database);
    /// - one `payment.created` per payment, one `payment.refunded` per refunded payment;
    /// - per variant, stock events alternating out/back, ending where its stock is.
    async fn outbox_matches(&self) -> Result<(), String> {
        let events = self.events().await;
        let mut announced: BTreeMap<(String, u64), i64> = BTreeMap::new();
        let mut stock_events: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for (kind, data) in &events {
            let id = data["id"].as_u64().ok_or(format!("{kind} without an id"))?;
            if kind.starts_with("product.") {
                let variant = data["variant_id"]
                    .as_u64()
                    .ok_or(format!("{kind} without a variant_id"))?;
                stock_events.entry(variant).or_default().push(kind.clone());
            } else {
                *announced.entry((kind.clone(), id)).or_default() += 1;
            }
        }
        let history: Vec<(u64, String, i64)> = sqlx::query_as(
            "SELECT order_id, CAST(status AS CHAR), COUNT(*) FROM order_status_history
             WHERE status IN ('pending', 'paid', 'cancelled', 'shipped', 'delivered')
             GROUP BY order_id, status",
        )
        .fetch_all(self.pool())
        .await
        .unwrap();
        let mut committed: BTreeMap<(String, u64), i64> = BTreeMap::new();
        for (order, status, n) in history {
            let kind = match status.as_str() {
                "pending" => "order.created".to_string(),
                other => format!("order.{other}"),
            };
            committed.insert((kind, order), n);
        }
        let payments: Vec<(u64, String)> =
            sqlx::query_as("SELECT id, CAST(status AS CHAR) FROM payments")
                .fetch_all(self.pool())
                .await
                .unwrap();
        for (id, status) in payments {
            committed.insert(("payment.created".into(), id), 1);
            if status == "refunded" {
                committed.insert(("payment.refunded".into(), id), 1);
            }
        }
        // A deleted order takes its history with it; its events stay.
        let orders: Vec<u64> = sqlx::query_scalar("SELECT id FROM orders")
            .fetch_all(self.pool())
            .await
            .unwrap();
        announced.retain(|(kind, id), _| !kind.starts_with("order.") || orders.contains(id));
        if announced != committed {
            return Err(format!(
                "events {announced:?}\ndo not match the database {committed:?}"
            ));
        }
        let levels: Vec<(u64, u32)> = sqlx::query_as("SELECT id, stock FROM variants")
            .fetch_all(self.pool())
            .await
            .unwrap();
        for (variant, stock) in levels {
            let seen = stock_events.remove(&variant).unwrap_or_default();
            let alternates = seen.iter().enumerate().all(|(i, kind)| {
                kind == if i % 2 == 0 {
                    "product.out_of_stock"
                } else {
                    "product.back_in_stock"
                }
            });
            let ends_right = (stock == 0) == (seen.len() % 2 == 1);
            if !alternates || !ends_right {
                return Err(format!("variant {variant} at {stock}: {seen:?}"));
            }
        }
        Ok(())
    }

    async fn place(&self, user: &TestUser, product: u64, quantity: u32) -> TestResponse {
        self.orders
            .post("/orders")
            .token(&user.token)
            .json(json!({"items": [{"product_id": product, "quantity": quantity}]}))
            .send()
            .await
    }

    async fn set_status(&self, admin: &TestUser, order: u64, status: &str) -> TestResponse {
        self.orders
            .put(&format!("/orders/{order}"))
            .token(&admin.token)
            .json(json!({"status": status}))
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

    async fn set_stock(&self, admin: &TestUser, product: u64, stock: u32) -> TestResponse {
        self.products
            .put(&format!("/products/{product}"))
            .token(&admin.token)
            .json(json!({"stock": stock}))
            .send()
            .await
    }
}

fn id(response: &TestResponse, status: u16) -> u64 {
    response.expect(status)["id"].as_u64().unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_life_of_an_order_is_told_in_order_with_the_resources_as_shown(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let admin = shop.orders.admin().await;
    let buyer = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "5.00", 2).await;

    let placed = shop.place(&buyer, mug, 2).await;
    let order = id(&placed, 201);
    let paid = shop.pay(&buyer, order, 4.0).await;
    let first = id(&paid, 201);
    let completing = shop.pay(&buyer, order, 6.0).await;
    let second = id(&completing, 201);
    shop.set_status(&admin, order, "processing")
        .await
        .expect(200);
    shop.set_status(&admin, order, "cancelled")
        .await
        .expect(200);
    assert_eq!(
        shop.kinds().await,
        [
            "order.created",
            "product.out_of_stock",
            "payment.created",
            "payment.created",
            "order.paid",
            "product.back_in_stock",
            "payment.refunded",
            "payment.refunded",
            "order.cancelled",
        ]
    );
    let events = shop.events().await;
    // `data` is the resource as the API answered at that moment.
    assert_eq!(events[0].1, placed.body);
    assert_eq!(events[2].1, paid.body);
    assert_eq!(events[3].1, completing.body);
    assert_eq!(events[4].1["status"], "paid");
    assert_eq!(events[1].1["stock"], 0);
    assert_eq!(events[5].1["stock"], 2);
    assert_eq!(events[6].1["id"], first);
    assert_eq!(events[7].1["id"], second);
    assert_eq!(events[7].1["status"], "refunded");
    let shown = shop
        .orders
        .get(&format!("/orders/{order}"))
        .token(&admin.token)
        .send()
        .await;
    assert_eq!(events[8].1, *shown.expect(200));
    shop.outbox_matches().await.unwrap();
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn shipping_delivery_stock_edits_expiry_and_deletions_are_told(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let admin = shop.orders.admin().await;
    let buyer = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "5.00", 3).await;

    let order = id(&shop.place(&buyer, mug, 1).await, 201);
    shop.pay(&buyer, order, 5.0).await.expect(201);
    shop.set_status(&admin, order, "processing")
        .await
        .expect(200);
    let shipped = shop
        .orders
        .put(&format!("/orders/{order}"))
        .token(&admin.token)
        .json(json!({"status": "shipped", "tracking_number": "TRACK-1"}))
        .send()
        .await;
    shipped.expect(200);
    // Setting the current status again changes nothing and tells nothing.
    shop.set_status(&admin, order, "shipped").await.expect(200);
    shop.set_status(&admin, order, "delivered")
        .await
        .expect(200);
    let events = shop.events().await;
    let shipped_event = events.iter().find(|(k, _)| k == "order.shipped").unwrap();
    assert_eq!(shipped_event.1, shipped.body);
    assert_eq!(shipped_event.1["tracking_number"], "TRACK-1");

    // An admin's stock edits: to zero and back; a price change tells nothing.
    shop.set_stock(&admin, mug, 0).await.expect(200);
    shop.set_stock(&admin, mug, 0).await.expect(200);
    shop.set_stock(&admin, mug, 4).await.expect(200);
    shop.set_stock(&admin, mug, 7).await.expect(200);
    shop.products
        .put(&format!("/products/{mug}"))
        .token(&admin.token)
        .json(json!({"price": 6.5}))
        .send()
        .await
        .expect(200);

    // Expiry, settled by a read, by the sweep, and by deleting the account.
    let on_read = id(&shop.place(&buyer, mug, 7).await, 201);
    shop.orders.expire(on_read).await;
    shop.orders
        .get(&format!("/orders/{on_read}"))
        .token(&buyer.token)
        .send()
        .await
        .expect(200);
    let swept = id(&shop.place(&buyer, mug, 7).await, 201);
    shop.orders.expire(swept).await;
    assert_eq!(
        domain::orders::expire_due(shop.pool(), 10).await.unwrap(),
        1
    );
    let deleted = id(&shop.place(&buyer, mug, 7).await, 201);
    shop.orders
        .delete(&format!("/orders/{deleted}"))
        .token(&buyer.token)
        .send()
        .await
        .expect(204);
    let held = id(&shop.place(&buyer, mug, 7).await, 201);
    shop.users
        .delete(&format!("/users/{}", buyer.id))
        .token(&buyer.token)
        .send()
        .await
        .expect(204);

    let kinds = shop.kinds().await;
    assert_eq!(
        kinds[3..],
        [
            "order.shipped",
            "order.delivered",
            "product.out_of_stock",
            "product.back_in_stock",
            // Expired on read.
            "order.created",
            "product.out_of_stock",
            "product.back_in_stock",
            "order.cancelled",
            // Expired in the sweep.
            "order.created",
            "product.out_of_stock",
            "product.back_in_stock",
            "order.cancelled",
            // Deleted while pending: the stock comes back, the order is gone.
            "order.created",
            "product.out_of_stock",
            "product.back_in_stock",
            // Cancelled by the account's deletion.
            "order.created",
            "product.out_of_stock",
            "product.back_in_stock",
            "order.cancelled",
        ]
    );
    let events = shop.events().await;
    let last = &events.last().unwrap().1;
    assert_eq!(last["id"], held);
    assert_eq!(last["status"], "cancelled");
    for expired in [on_read, swept] {
        let cancelled = events
            .iter()
            .find(|(k, d)| k == "order.cancelled" && d["id"] == expired)
            .unwrap();
        let history = cancelled.1["history"].as_array().unwrap();
        assert_eq!(history.last().unwrap()["actor"], "system");
    }
    shop.outbox_matches().await.unwrap();
}

/// A flash sale where every buyer sends their order twice at once under one key: the
/// orders that took stock are told once each, the refused ones and the replays not at all,
/// and the shelf emptying is told once.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn refused_and_replayed_orders_tell_nothing(pool: MySqlPool) {
    let shop = std::sync::Arc::new(Shop::new(pool));
    let mug = shop.orders.product("Mug", "5.00", 5).await;
    let mut buyers = Vec::new();
    for _ in 0..12 {
        buyers.push(shop.orders.customer().await);
    }
    let buyers = std::sync::Arc::new(buyers);
    let responses = in_parallel(24, |i| {
        let (shop, buyers) = (shop.clone(), buyers.clone());
        async move {
            shop.orders
                .post("/orders")
                .token(&buyers[i / 2].token)
                .header("idempotency-key", "flash")
                .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
                .send()
                .await
        }
    })
    .await;
    let placed: std::collections::BTreeSet<u64> = responses
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["id"].as_u64().unwrap())
        .collect();
    assert!(
        responses
            .iter()
            .all(|r| matches!(r.status.as_u16(), 201 | 409)),
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(placed.len(), 5);
    let kinds = shop.kinds().await;
    assert_eq!(kinds.iter().filter(|k| *k == "order.created").count(), 5);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "product.out_of_stock")
            .count(),
        1
    );
    assert_eq!(kinds.last().unwrap(), "product.out_of_stock");
    shop.outbox_matches().await.unwrap();
}

/// An order that empties one shelf and leaves stock on the other takes one unit of each,
/// once: the update that takes only where a unit is left over takes the mug alone and is
/// undone before the one that may take the last unit runs. Only the emptied shelf is told.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_order_emptying_one_of_its_shelves_takes_each_line_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", "5.00", 3).await;
    let cup = shop.orders.product("Cup", "4.00", 1).await;
    let buyer = shop.orders.customer().await;
    let placed = shop
        .orders
        .post("/orders")
        .token(&buyer.token)
        .json(json!({"items": [
            {"product_id": mug, "quantity": 1},
            {"product_id": cup, "quantity": 1}
        ]}))
        .send()
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    assert_eq!(placed.body["total"], json!(9.0));
    assert_eq!(shop.orders.stock(mug).await, 2);
    assert_eq!(shop.orders.stock(cup).await, 0);
    let events = shop.events().await;
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["order.created", "product.out_of_stock"]);
    assert_eq!(events[1].1["id"], cup);

    // The next order for the mug alone leaves a unit: nothing read back, nothing told.
    let again = shop.place(&buyer, mug, 1).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(shop.orders.stock(mug).await, 1);
    assert_eq!(shop.kinds().await.len(), 3);
    shop.outbox_matches().await.unwrap();
}

/// The paths that end an order race for it: its owner cancelling, the owner's account
/// deleted, the sweep expiring it, a payment completing it, an admin restocking its
/// product. Whichever wins, each committed change is told once and the losers tell nothing.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn racing_changes_are_each_told_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let admin = shop.orders.admin().await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        // A shelf that the order empties, so its return is told too.
        let mug = shop.orders.product("Mug", "5.00", 3).await;
        let buyer = shop.orders.customer().await;
        let order = id(&shop.place(&buyer, mug, 3).await, 201);
        if round % 2 == 1 {
            shop.orders.expire(order).await;
        }
        let cancel = shop
            .orders
            .put(&format!("/orders/{order}"))
            .token(&buyer.token)
            .json(json!({"status": "cancelled"}))
            .send();
        let deletion = shop
            .users
            .delete(&format!("/users/{}", buyer.id))
            .token(&buyer.token)
            .send();
        let payment = shop.pay(&buyer, order, 15.0);
        let sweep = domain::orders::expire_due(shop.pool(), 10);
        let restock = shop.set_stock(&admin, mug, (round % 3) as u32);
        let (cancel, deletion, payment, swept, restock) =
            tokio::join!(cancel, deletion, payment, sweep, restock);
        let codes = (
            cancel.status,
            deletion.status,
            payment.status,
            restock.status,
        );
        if swept.is_err() || restock.status != 200 {
            broken.push(format!("round {round}: {codes:?} {swept:?}"));
        }
        if let Err(why) = shop.outbox_matches().await {
            broken.push(format!("round {round}: {codes:?}: {why}"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// An account's deletion takes the person out of the events that copied their orders, as
/// it does out of the orders: no name, address or owner is left in the feed.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_deleted_account_leaves_no_personal_data_in_events(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let buyer = shop.orders.customer().await;
    let other = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "5.00", 10).await;
    let address = json!({
        "name": "Ada Lovelace", "line1": "12 Analytical Row", "postal_code": "N1 9GU",
        "city": "London", "country": "GB", "phone": "+44 20 7946 0000"
    });
    let mut orders = Vec::new();
    for user in [&buyer, &other] {
        let placed = shop
            .orders
            .post("/orders")
            .token(&user.token)
            .json(json!({
                "items": [{"product_id": mug, "quantity": 1}],
                "shipping_address": address
            }))
            .send()
            .await;
        orders.push(id(&placed, 201));
    }
    shop.users
        .delete(&format!("/users/{}", buyer.id))
        .token(&buyer.token)
        .send()
        .await
        .expect(204);

    let events = shop.events().await;
    let of = |order: u64| -> Vec<&Value> {
        events
            .iter()
            .filter(|(k, d)| k.starts_with("order.") && d["id"] == order)
            .map(|(_, d)| d)
            .collect()
    };
    let deleted = of(orders[0]);
    assert_eq!(deleted.len(), 2, "created, then cancelled by the deletion");
    for data in deleted {
        assert_eq!(data["user_id"], Value::Null);
        assert_eq!(data["shipping_address"], Value::Null);
        assert!(!data.to_string().contains("Lovelace"), "{data}");
        assert_eq!(data["total"], 5.0);
    }
    // Another customer's order keeps its owner and address.
    let kept = of(orders[1]);
    assert_eq!(kept[0]["user_id"], other.id);
    assert_eq!(kept[0]["shipping_address"]["name"], "Ada Lovelace");
    shop.outbox_matches().await.unwrap();
}

/// Stock events are a variant's: one size selling out tells it, with the product as shown
/// (its stock still the other size's) and the variant that moved, and a restock of that
/// size through `PUT /variants/{id}` tells it is back.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_variant_selling_out_is_told_with_its_product_and_its_id(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let admin = shop.orders.admin().await;
    let buyer = shop.orders.customer().await;
    let towel = shop.orders.product("Towel", "9.00", 5).await;
    let large = shop
        .products
        .post(&format!("/products/{towel}/variants"))
        .token(&admin.token)
        .json(json!({"sku": "TOWEL-L", "options": {"size": "L"}, "price": 11.0, "stock": 1}))
        .send()
        .await;
    let large = id(&large, 201);
    shop.orders
        .post("/orders")
        .token(&buyer.token)
        .json(json!({"items": [{"variant_id": large, "quantity": 1}]}))
        .send()
        .await
        .expect(201);
    shop.products
        .put(&format!("/variants/{large}"))
        .token(&admin.token)
        .json(json!({"stock": 3}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        shop.kinds().await,
        [
            "order.created",
            "product.out_of_stock",
            "product.back_in_stock"
        ]
    );
    let events = shop.events().await;
    assert_eq!(events[1].1["id"], towel);
    assert_eq!(events[1].1["variant_id"], large);
    assert_eq!(events[1].1["stock"], 5, "the other size is still there");
    assert_eq!(events[2].1["variant_id"], large);
    assert_eq!(events[2].1["stock"], 8);
}
