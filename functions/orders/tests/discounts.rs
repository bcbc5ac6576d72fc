//! Discount codes at `POST /orders`: totals, refusals, and uses given back exactly once.

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, TestUser};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, orders::router)
}

/// A discount stored as the admin would make it; `extra` is SQL assignments.
async fn discount(app: &TestApp, code: &str, kind: &str, value: &str, extra: &str) -> u64 {
    let id = sqlx::query(
        "INSERT INTO discounts (code, kind, value, starts_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6) - INTERVAL 1 HOUR)",
    )
    .bind(code)
    .bind(kind)
    .bind(value)
    .execute(app.pool())
    .await
    .unwrap()
    .last_insert_id();
    if !extra.is_empty() {
        sqlx::query(&format!("UPDATE discounts SET {extra} WHERE id = ?"))
            .bind(id)
            .execute(app.pool())
            .await
            .unwrap();
    }
    id
}

async fn times_used(app: &TestApp, id: u64) -> u32 {
    sqlx::query_scalar("SELECT times_used FROM discounts WHERE id = ?")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn place(
    app: &TestApp,
    user: &TestUser,
    product: u64,
    quantity: u32,
    code: &str,
) -> testkit::TestResponse {
    app.post("/orders")
        .token(&user.token)
        .json(json!({"items": [{"product_id": product, "quantity": quantity}], "discount_code": code}))
        .send()
        .await
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_percent_discount_is_rounded_half_to_even_once_per_order(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let pin = app.product("Pin", "0.15", 100).await;
    let clip = app.product("Clip", "0.30", 100).await;
    let code = discount(&app, "TENOFF", "percent", "10", "").await;
    // 10 % of 0.45 is 0.045: half a cent, to the even cent 0.04 (half-up would say 0.05).
    // Per line it would be 0.015 + 0.03 = 0.02 + 0.03 = 0.05: the order rounds once.
    let response = app
        .post("/orders")
        .token(&ada.token)
        .json(json!({"items": [{"product_id": pin, "quantity": 1}, {"product_id": clip, "quantity": 1}],
                     "discount_code": "tenoff"}))
        .send()
        .await;
    let body = response.expect(201).clone();
    let raw = String::from_utf8_lossy(&response.raw).to_string();
    assert!(raw.contains("\"subtotal\":0.45"), "{raw}");
    assert!(
        raw.contains(r#""discount":{"code":"TENOFF","kind":"percent","value":10,"amount":0.04}"#),
        "{raw}"
    );
    assert!(raw.contains("\"total\":0.41"), "{raw}");
    assert_eq!(body["status"], "pending");
    assert_eq!(times_used(&app, code).await, 1);
    let id = body["id"].as_u64().unwrap();
    let stored = app
        .get(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(
        stored.raw, response.raw,
        "the order answered is the order stored"
    );
    let stored: (String, String, String) = sqlx::query_as(
        "SELECT CAST(total AS CHAR), CAST(subtotal AS CHAR), CAST(discount_amount AS CHAR) FROM orders WHERE id = ?",
    )
    .bind(id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(stored, ("0.41".into(), "0.45".into(), "0.04".into()));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_amount_larger_than_the_subtotal_makes_a_paid_order_of_nothing(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4.10", 10).await;
    discount(&app, "GIFT-50", "amount", "50", "").await;
    let response = place(&app, &ada, mug, 2, "GIFT-50").await;
    let body = response.expect(201).clone();
    let raw = String::from_utf8_lossy(&response.raw).to_string();
    assert!(raw.contains("\"subtotal\":8.20"), "{raw}");
    assert!(
        raw.contains(
            r#""discount":{"code":"GIFT-50","kind":"amount","value":50.00,"amount":8.20}"#
        ),
        "{raw}"
    );
    assert!(raw.contains("\"total\":0.00"), "{raw}");
    assert_eq!(body["status"], "paid", "nothing to pay");
    assert_eq!(body["expires_at"], Value::Null);
    assert_eq!(body["history"].as_array().unwrap().len(), 1);
    assert_eq!(body["history"][0]["status"], "paid");
    assert_eq!(app.stock(mug).await, 8);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn orders_without_a_code_show_no_discount(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4.10", 10).await;
    let response = app
        .post("/orders")
        .token(&ada.token)
        .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
        .send()
        .await;
    let body = response.expect(201);
    assert_eq!(body["discount"], Value::Null);
    assert_eq!(body["subtotal"], body["total"]);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_refusal_is_a_409_that_changes_nothing(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "10", 10).await;
    let cases = [
        ("OFF", "active = FALSE", "not active"),
        (
            "LATER",
            "starts_at = UTC_TIMESTAMP(6) + INTERVAL 1 DAY",
            "not valid yet",
        ),
        (
            "OVER",
            "ends_at = UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE",
            "has ended",
        ),
        (
            "GONE",
            "usage_limit = 2, times_used = 2",
            "used as many times",
        ),
        ("BIG", "min_subtotal = 10.01", "at least 10.01"),
    ];
    for (code, extra, _) in cases {
        discount(&app, code, "percent", "10", extra).await;
    }
    let mut all: Vec<(&str, &str)> = cases.iter().map(|(c, _, why)| (*c, *why)).collect();
    all.push(("NOSUCH", "does not exist"));
    for (code, why) in all {
        let response = place(&app, &ada, mug, 1, code).await;
        let problem = response.problem(409);
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("discount-not-applicable"),
            "{problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{code}: {problem}"
        );
    }
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.stock(mug).await, 10);
    let used: Vec<u32> = sqlx::query_scalar("SELECT times_used FROM discounts ORDER BY id")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(used, vec![0, 0, 0, 2, 0]);
    // The minimum is inclusive.
    sqlx::query("UPDATE discounts SET min_subtotal = 10 WHERE code = 'BIG'")
        .execute(app.pool())
        .await
        .unwrap();
    place(&app, &ada, mug, 1, "BIG").await.expect(201);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_malformed_code_is_a_400_naming_it(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "10", 10).await;
    for code in [
        json!("no"),
        json!("bad code"),
        json!(12),
        json!("X".repeat(33)),
    ] {
        app.post("/orders")
            .token(&ada.token)
            .json(json!({"items": [{"product_id": mug, "quantity": 1}], "discount_code": code}))
            .send()
            .await
            .invalid_field("discount_code");
    }
    assert_eq!(app.count("orders").await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_per_customer_limit_counts_every_order_but_cancelled_ones(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let mug = app.product("Mug", "10", 10).await;
    let code = discount(&app, "ONCE", "amount", "1", "per_customer_limit = 1").await;
    let first = place(&app, &ada, mug, 1, "ONCE").await.expect(201).clone();
    let again = place(&app, &ada, mug, 1, "ONCE").await;
    assert!(
        again.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("This customer")
    );
    place(&app, &bob, mug, 1, "ONCE").await.expect(201);
    assert_eq!(times_used(&app, code).await, 2);

    let id = first["id"].as_u64().unwrap();
    app.put(&format!("/orders/{id}"))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    assert_eq!(times_used(&app, code).await, 1);
    place(&app, &ada, mug, 1, "ONCE").await.expect(201);
    assert_eq!(times_used(&app, code).await, 2);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancel_delete_and_expiry_each_give_the_use_back_once(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "10", 10).await;
    let code = discount(&app, "BACK", "percent", "50", "usage_limit = 3").await;
    let ids: Vec<u64> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            let body = place(&app, &ada, mug, 1, "BACK").await.expect(201).clone();
            ids.push(body["id"].as_u64().unwrap());
        }
        ids
    };
    assert_eq!(times_used(&app, code).await, 3);
    place(&app, &ada, mug, 1, "BACK").await.problem(409);

    // Cancel, then cancel again (a no-op) and delete the cancelled order: one use back.
    let cancel = |id: u64| {
        let (app, token) = (&app, admin.token.clone());
        async move {
            app.put(&format!("/orders/{id}"))
                .token(&token)
                .json(json!({"status": "cancelled"}))
                .send()
                .await
                .expect(200)
                .clone()
        }
    };
    cancel(ids[0]).await;
    cancel(ids[0]).await;
    app.delete(&format!("/orders/{}", ids[0]))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    assert_eq!(times_used(&app, code).await, 2);

    // Deleting a pending order.
    app.delete(&format!("/orders/{}", ids[1]))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    assert_eq!(times_used(&app, code).await, 1);

    // Expiry, settled by a read, then a cancel of the expired order changes nothing more.
    app.expire(ids[2]).await;
    let read = app
        .get(&format!("/orders/{}", ids[2]))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(read["status"], "cancelled");
    assert_eq!(read["discount"]["code"], "BACK", "the order keeps its copy");
    cancel(ids[2]).await;
    assert_eq!(times_used(&app, code).await, 0);
    assert_eq!(app.stock(mug).await, 10);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_paid_order_cancelled_by_an_admin_gives_its_use_back(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "10", 10).await;
    let code = discount(&app, "ALL", "percent", "100", "").await;
    let body = place(&app, &ada, mug, 2, "ALL").await.expect(201).clone();
    assert_eq!(body["status"], "paid");
    let id = body["id"].as_u64().unwrap();
    assert_eq!(times_used(&app, code).await, 1);
    let cancelled = app
        .put(&format!("/orders/{id}"))
        .token(&admin.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(times_used(&app, code).await, 0);
    assert_eq!(app.stock(mug).await, 10);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn deleting_a_discount_changes_no_order(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "10", 10).await;
    let code = discount(&app, "SHORT-LIVED", "amount", "2.50", "").await;
    let body = place(&app, &ada, mug, 1, "SHORT-LIVED")
        .await
        .expect(201)
        .clone();
    let id = body["id"].as_u64().unwrap();
    sqlx::query("DELETE FROM discounts WHERE id = ?")
        .bind(code)
        .execute(app.pool())
        .await
        .unwrap();
    let read = app
        .get(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(read["discount"], body["discount"]);
    assert_eq!(read["total"], json!(7.5));
    // Cancelling it now has no discount to give a use back to, and fails on nothing.
    app.put(&format!("/orders/{id}"))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    place(&app, &ada, mug, 1, "SHORT-LIVED").await.problem(409);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_idempotency_fingerprint_covers_the_code(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "10", 10).await;
    let code = discount(&app, "KEYED", "amount", "1", "").await;
    let send = |body: Value| {
        let (app, token) = (&app, ada.token.clone());
        async move {
            app.post("/orders")
                .token(&token)
                .header("idempotency-key", "with-a-code")
                .json(body)
                .send()
                .await
        }
    };
    let items = json!([{"product_id": mug, "quantity": 1}]);
    let first = send(json!({"items": items, "discount_code": "KEYED"})).await;
    first.expect(201);
    let replay = send(json!({"items": items, "discount_code": "KEYED"})).await;
    assert_eq!(replay.raw, first.raw);
    send(json!({"items": items})).await.problem(409);
    send(json!({"items": items, "discount_code": "OTHER"}))
        .await
        .problem(409);
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(times_used(&app, code).await, 1);
}
