use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{
    TestApp, TestUser, http_api_event, in_parallel, invoke_lambda, lambda_body, rest_api_event,
};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, orders::router)
}

async fn order(app: &TestApp, user: &TestUser, items: Value) -> Value {
    app.post("/orders")
        .token(&user.token)
        .json(json!({"items": items}))
        .send()
        .await
        .expect(201)
        .clone()
}

async fn set_status(app: &TestApp, id: u64, status: &str) {
    sqlx::query("UPDATE orders SET status = ? WHERE id = ?")
        .bind(status)
        .bind(id)
        .execute(app.pool())
        .await
        .unwrap();
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn placing_an_order_takes_stock_and_snapshots_prices(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4.10", 10).await;
    let pen = app.product("Pen", "0.10", 100).await;

    let response = app
        .post("/orders")
        .token(&ada.token)
        .json(json!({"items": [{"product_id": pen, "quantity": 3}, {"product_id": mug, "quantity": 2}, {"product_id": pen, "quantity": 4}]}))
        .send()
        .await;
    let body = response.expect(201).clone();
    let id = body["id"].as_u64().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/orders/{id}").as_str())
    );
    assert_eq!(body["user_id"], ada.id);
    assert_eq!(body["status"], "pending");
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        2,
        "the same product twice is merged"
    );
    let stored = app
        .get(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(
        String::from_utf8_lossy(&stored.raw),
        String::from_utf8_lossy(&response.raw),
        "the order answered is the order stored, byte for byte"
    );
    assert_eq!(
        body["items"][0],
        json!({"product_id": mug, "variant_id": body["items"][0]["variant_id"], "name": "Mug",
               "sku": format!("P{mug}"), "options": {}, "unit_price": 4.1, "quantity": 2,
               "line_total": 8.2})
    );
    assert_eq!(body["items"][1]["quantity"], 7);
    assert_eq!(body["items"][1]["line_total"], json!(0.7));
    assert!(
        String::from_utf8_lossy(&response.raw).contains("\"total\":8.90"),
        "exact decimal total"
    );
    assert_eq!(body["amount_paid"], json!(0.0));
    assert_eq!(app.stock(mug).await, 8);
    assert_eq!(app.stock(pen).await, 93);

    // Later price changes and deletions leave the order as bought.
    sqlx::query("UPDATE products SET price = 99, name = 'Renamed' WHERE id = ?")
        .bind(mug)
        .execute(app.pool())
        .await
        .unwrap();
    domain::products::delete(app.pool(), pen).await.unwrap();
    let again = app
        .get(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(again["items"][0]["unit_price"], json!(4.1));
    assert_eq!(again["items"][0]["name"], "Mug");
    assert_eq!(again["items"][1]["product_id"], Value::Null);
    assert_eq!(again["items"][1]["name"], "Pen");
    assert_eq!(again["total"], json!(8.9));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn unknown_products_and_short_stock_change_nothing(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 5).await;
    let pen = app.product("Pen", "1", 1).await;
    let lamp = app.product("Lamp", "30", 0).await;

    let unknown = app.post("/orders").token(&ada.token)
        .json(json!({"items": [{"product_id": mug, "quantity": 1}, {"product_id": 424242, "quantity": 1}]}))
        .send().await;
    unknown.invalid_field("items");
    assert!(
        unknown.body.to_string().contains("424242"),
        "names the unknown product"
    );

    let short = app.post("/orders").token(&ada.token)
        .json(json!({"items": [{"product_id": mug, "quantity": 5}, {"product_id": pen, "quantity": 2}, {"product_id": lamp, "quantity": 1}]}))
        .send().await;
    let problem = short.problem(409);
    assert_eq!(problem["type"], "/problems/insufficient-stock");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(&pen.to_string())
            && detail.contains(&lamp.to_string())
            && !detail.contains(&format!("{mug},")),
        "{detail}"
    );

    assert_eq!(
        app.stock(mug).await,
        5,
        "the line that fitted was not taken either"
    );
    assert_eq!(app.stock(pen).await, 1);
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.count("order_items").await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn order_input_is_checked(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let mug = app.product("Mug", "4", 5000).await;
    let dear = app.product("Yacht", "99999999.99", 10).await;
    let line = |q: Value| json!({"items": [{"product_id": mug, "quantity": q}]});
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"product_id": mug, "quantity": 1}))
        .collect();
    let cases = [
        (json!({"items": []}), "items"),
        (json!({"items": many}), "items"),
        (json!({}), "items"),
        (line(json!(0)), "items[0].quantity"),
        (line(json!(1001)), "items[0].quantity"),
        (line(json!(-1)), "items[0].quantity"),
        (line(json!(1.5)), "items[0].quantity"),
        (line(json!("2")), "items[0].quantity"),
        (
            json!({"items": [{"product_id": mug, "quantity": 600}, {"product_id": mug, "quantity": 600}]}),
            "items",
        ),
        (
            json!({"items": [{"product_id": 0, "quantity": 1}]}),
            "items[0].product_id",
        ),
        (
            json!({"items": [{"product_id": mug, "quantity": 1, "price": 0.01}]}),
            "items[0].price",
        ),
        (
            json!({"items": [{"product_id": dear, "quantity": 2}]}),
            "items",
        ),
    ];
    for (body, field) in cases {
        app.post("/orders")
            .token(&ada.token)
            .json(body)
            .send()
            .await
            .invalid_field(field);
    }
    app.post("/orders")
        .json(line(json!(1)))
        .send()
        .await
        .problem(401);
    let mut for_bob = line(json!(1));
    for_bob["user_id"] = json!(bob.id);
    app.post("/orders")
        .token(&ada.token)
        .json(for_bob.clone())
        .send()
        .await
        .problem(403);
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.stock(mug).await, 5000);

    // An admin may order for a customer, but not for nobody.
    let admin = app.admin().await;
    let placed = app
        .post("/orders")
        .token(&admin.token)
        .json(for_bob)
        .send()
        .await;
    assert_eq!(placed.expect(201)["user_id"], bob.id);
    let mut for_nobody = line(json!(1));
    for_nobody["user_id"] = json!(999999);
    app.post("/orders")
        .token(&admin.token)
        .json(for_nobody)
        .send()
        .await
        .invalid_field("user_id");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn orders_are_private_to_their_owner_and_admins(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 5).await;
    let placed = order(&app, &ada, json!([{"product_id": mug, "quantity": 1}])).await;
    let uri = format!("/orders/{}", placed["id"]);

    app.get(&uri).token(&ada.token).send().await.expect(200);
    app.get(&uri).token(&admin.token).send().await.expect(200);
    let hidden = app.get(&uri).token(&bob.token).send().await;
    let missing = app.get("/orders/999999").token(&bob.token).send().await;
    hidden.problem(404);
    assert_eq!(
        hidden.raw, missing.raw,
        "indistinguishable from a missing order"
    );
    app.get(&uri).send().await.problem(401);
    app.put(&uri)
        .token(&bob.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .problem(404);
    app.delete(&uri).token(&bob.token).send().await.problem(404);
    assert_eq!(app.stock(mug).await, 4);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_allowed_transition_and_a_sample_of_forbidden_ones(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 100).await;
    let put = |id: u64, token: String, status: &'static str| {
        let app = &app;
        async move {
            app.put(&format!("/orders/{id}"))
                .token(&token)
                .json(json!({"status": status}))
                .send()
                .await
        }
    };
    let new_order = || async {
        order(&app, &ada, json!([{"product_id": mug, "quantity": 1}])).await["id"]
            .as_u64()
            .unwrap()
    };

    // The fulfilment path, by an admin.
    let id = new_order().await;
    set_status(&app, id, "paid").await;
    put(id, ada.token.clone(), "processing").await.problem(403);
    for next in ["processing", "shipped", "delivered"] {
        assert_eq!(
            put(id, admin.token.clone(), next).await.expect(200)["status"],
            next
        );
    }
    put(id, admin.token.clone(), "cancelled").await.problem(409);
    put(id, admin.token.clone(), "delivered").await.expect(200);

    // A customer cancels their own pending order; the same status again is a no-op.
    let id = new_order().await;
    put(id, ada.token.clone(), "pending").await.expect(200);
    assert_eq!(
        put(id, ada.token.clone(), "cancelled").await.expect(200)["status"],
        "cancelled"
    );
    put(id, ada.token.clone(), "cancelled").await.expect(200);
    put(id, admin.token.clone(), "pending").await.problem(409);
    put(id, admin.token.clone(), "paid").await.problem(409);

    // `paid` comes only from payments, even for an admin.
    let id = new_order().await;
    let refused = put(id, admin.token.clone(), "paid").await;
    assert_eq!(
        refused.problem(409)["type"],
        "/problems/invalid-status-transition"
    );
    put(id, admin.token.clone(), "shipped").await.problem(409);

    // Paid and processing orders are cancelled by admins only.
    for from in ["paid", "processing"] {
        let id = new_order().await;
        set_status(&app, id, from).await;
        put(id, ada.token.clone(), "cancelled").await.problem(403);
        put(id, admin.token.clone(), "cancelled").await.expect(200);
    }
    let id = new_order().await;
    set_status(&app, id, "shipped").await;
    put(id, admin.token.clone(), "cancelled").await.problem(409);
    put(id, admin.token.clone(), "processing")
        .await
        .problem(409);

    // French labels, and nonsense.
    let id = new_order().await;
    set_status(&app, id, "paid").await;
    assert_eq!(
        put(id, admin.token.clone(), "en traitement")
            .await
            .expect(200)["status"],
        "processing"
    );
    assert_eq!(
        put(id, admin.token.clone(), "expédiée").await.expect(200)["status"],
        "shipped"
    );
    assert_eq!(
        put(id, admin.token.clone(), "livrée").await.expect(200)["status"],
        "delivered"
    );
    let id = new_order().await;
    assert_eq!(
        put(id, ada.token.clone(), "annulée").await.expect(200)["status"],
        "cancelled"
    );
    put(id, ada.token.clone(), "lost")
        .await
        .invalid_field("status");
    app.put(&format!("/orders/{id}"))
        .token(&ada.token)
        .json(json!({}))
        .send()
        .await
        .invalid_field("status");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancelling_returns_stock_and_refunds_payments(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 10).await;
    let pen = app.product("Pen", "1", 10).await;

    let pending = order(
        &app,
        &ada,
        json!([{"product_id": mug, "quantity": 3}, {"product_id": pen, "quantity": 2}]),
    )
    .await;
    domain::products::delete(app.pool(), pen).await.unwrap();
    app.put(&format!("/orders/{}", pending["id"]))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        app.stock(mug).await,
        10,
        "stock back; the deleted pen has nowhere to go"
    );

    let paid = order(&app, &ada, json!([{"product_id": mug, "quantity": 4}])).await;
    let paid_id = paid["id"].as_u64().unwrap();
    sqlx::query("UPDATE orders SET status = 'paid', amount_paid = total WHERE id = ?")
        .bind(paid_id)
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO payments (order_id, amount, method) VALUES (?, 10, 'card'), (?, 6, 'paypal')",
    )
    .bind(paid_id)
    .bind(paid_id)
    .execute(app.pool())
    .await
    .unwrap();
    let cancelled = app
        .put(&format!("/orders/{paid_id}"))
        .token(&admin.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await;
    assert_eq!(cancelled.expect(200)["status"], "cancelled");
    assert_eq!(app.stock(mug).await, 10);
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM payments WHERE order_id = ?")
            .bind(paid_id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(statuses, ["refunded", "refunded"]);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn only_pending_or_cancelled_orders_can_be_deleted(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;

    let pending = order(&app, &ada, json!([{"product_id": mug, "quantity": 3}])).await;
    app.delete(&format!("/orders/{}", pending["id"]))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    assert_eq!(app.stock(mug).await, 10);
    app.get(&format!("/orders/{}", pending["id"]))
        .token(&ada.token)
        .send()
        .await
        .problem(404);

    let cancelled = order(&app, &ada, json!([{"product_id": mug, "quantity": 2}])).await;
    app.put(&format!("/orders/{}", cancelled["id"]))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    app.delete(&format!("/orders/{}", cancelled["id"]))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    assert_eq!(
        app.stock(mug).await,
        10,
        "no second return of the same stock"
    );

    let paid = order(&app, &ada, json!([{"product_id": mug, "quantity": 1}])).await;
    set_status(&app, paid["id"].as_u64().unwrap(), "paid").await;
    let refused = app
        .delete(&format!("/orders/{}", paid["id"]))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(
        refused.problem(409)["type"],
        "/problems/order-not-deletable"
    );
    assert_eq!(app.count("orders").await, 1);
}

/// A payment record, completed or refunded, is never destroyed: an order that has one
/// cannot be deleted, whatever its status.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_order_with_any_payment_record_cannot_be_deleted(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 10).await;
    let pay = async |order: &Value, amount: u32| {
        sqlx::query("INSERT INTO payments (order_id, amount, method) VALUES (?, ?, 'card')")
            .bind(order["id"].as_u64())
            .bind(amount)
            .execute(app.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE orders SET amount_paid = amount_paid + ? WHERE id = ?")
            .bind(amount)
            .bind(order["id"].as_u64())
            .execute(app.pool())
            .await
            .unwrap();
    };
    let refused = async |order: &Value, who: &TestUser| {
        let r = app
            .delete(&format!("/orders/{}", order["id"]))
            .token(&who.token)
            .send()
            .await;
        assert_eq!(r.problem(409)["type"], "/problems/order-has-payments");
    };

    // Pending and partly paid: the payment is completed.
    let partly = order(&app, &ada, json!([{"product_id": mug, "quantity": 3}])).await;
    pay(&partly, 4).await;
    refused(&partly, &ada).await;
    refused(&partly, &admin).await;
    assert_eq!(app.stock(mug).await, 7, "the stock stays held");
    // Cancelled: the payment is refunded, and still a record.
    app.put(&format!("/orders/{}", partly["id"]))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    assert_eq!(app.stock(mug).await, 10);
    refused(&partly, &ada).await;
    refused(&partly, &admin).await;
    assert_eq!(app.count("orders").await, 1);
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT CAST(status AS CHAR) FROM payments WHERE order_id = ?")
            .bind(partly["id"].as_u64())
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(statuses, ["refunded"]);
    assert_eq!(app.stock(mug).await, 10, "and nothing moved");

    // An expired one with a payment: settled by the system, and still not deletable; the
    // settlement is kept.
    let expired = order(&app, &ada, json!([{"product_id": mug, "quantity": 2}])).await;
    pay(&expired, 1).await;
    app.expire(expired["id"].as_u64().unwrap()).await;
    refused(&expired, &ada).await;
    let settled: String =
        sqlx::query_scalar("SELECT CAST(status AS CHAR) FROM orders WHERE id = ?")
            .bind(expired["id"].as_u64())
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(settled, "cancelled");
    assert_eq!(app.stock(mug).await, 10);
}

/// (201s, 409s with `too-many-pending-orders`, anything else) among `statuses`.
fn tally(responses: &[(u16, Value)]) -> (usize, usize, Vec<u16>) {
    let created = responses.iter().filter(|(s, _)| *s == 201).count();
    let capped = responses
        .iter()
        .filter(|(s, body)| *s == 409 && body["type"] == "/problems/too-many-pending-orders")
        .count();
    let other = responses
        .iter()
        .filter(|(s, body)| {
            *s != 201 && !(*s == 409 && body["type"] == "/problems/too-many-pending-orders")
        })
        .map(|(s, _)| *s)
        .collect();
    (created, capped, other)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_customer_holds_at_most_max_pending_orders(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 1000).await;
    let one = json!({"items": [{"product_id": mug, "quantity": 1}]});
    let mut placed = Vec::new();
    for _ in 0..10 {
        placed.push(
            order(&app, &ada, one["items"].clone()).await["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let refused = app
        .post("/orders")
        .token(&ada.token)
        .json(one.clone())
        .send()
        .await;
    let problem = refused.problem(409);
    assert_eq!(problem["type"], "/problems/too-many-pending-orders");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("10 pending orders")
    );
    // The owner is counted, whoever places the order: an admin ordering for Ada too.
    let for_ada = json!({"user_id": ada.id, "items": one["items"]});
    let by_admin = app
        .post("/orders")
        .token(&admin.token)
        .json(for_ada.clone())
        .send()
        .await;
    assert_eq!(
        by_admin.problem(409)["type"],
        "/problems/too-many-pending-orders"
    );
    assert_eq!(app.count("orders").await, 10);
    assert_eq!(app.stock(mug).await, 990, "a refused order holds nothing");

    // A cancelled, a paid and an expired order no longer count.
    app.put(&format!("/orders/{}", placed[0]))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    set_status(&app, placed[1], "paid").await;
    app.expire(placed[2]).await;
    for _ in 0..3 {
        app.post("/orders")
            .token(&admin.token)
            .json(for_ada.clone())
            .send()
            .await
            .expect(201);
    }
    app.post("/orders")
        .token(&ada.token)
        .json(one.clone())
        .send()
        .await
        .problem(409);
    // The admin's own orders are theirs to count.
    app.post("/orders")
        .token(&admin.token)
        .json(one)
        .send()
        .await
        .expect(201);
}

/// The cap is checked against a bound the owner's row keeps: each order admitted raises
/// it, nothing that ends a hold lowers it, and an order that finds it at the cap
/// counts. Pending orders written by hand before the account's first order are counted
/// too: every account starts with the bound unknown.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_cap_rests_on_a_bound_raised_by_each_order_and_on_a_count_at_the_cap(pool: MySqlPool) {
    let mut state = testkit::state(pool);
    state.order_limits.max_pending = 3;
    let app = TestApp::with_state(state, orders::router);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 100).await;
    let items = json!([{"product_id": mug, "quantity": 1}]);
    let bound = |id: u64| {
        let pool = app.pool().clone();
        async move {
            sqlx::query_scalar::<_, Option<u32>>(
                "SELECT pending_orders_bound FROM users WHERE id = ?",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // Two pending orders written by hand, and one that has run out.
    for expires in ["1 HOUR", "1 HOUR", "-1 SECOND"] {
        sqlx::query(&format!(
            "INSERT INTO orders (user_id, total, expires_at) \
             VALUES (?, 4, UTC_TIMESTAMP(6) + INTERVAL {expires})"
        ))
        .bind(ada.id)
        .execute(app.pool())
        .await
        .unwrap();
    }
    assert_eq!(bound(ada.id).await, None);
    let first = order(&app, &ada, items.clone()).await["id"]
        .as_u64()
        .unwrap();
    assert_eq!(bound(ada.id).await, Some(3), "counted 2, then raised");
    let refused = || async {
        let refusal = app
            .post("/orders")
            .token(&ada.token)
            .json(json!({"items": items}))
            .send()
            .await;
        assert_eq!(
            refusal.problem(409)["type"],
            "/problems/too-many-pending-orders"
        );
    };
    refused().await;
    assert_eq!(
        bound(ada.id).await,
        Some(3),
        "a refused order raises nothing"
    );

    // A cancel ends a hold without lowering the bound; the next order counts again.
    app.put(&format!("/orders/{first}"))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    assert_eq!(bound(ada.id).await, Some(3));
    order(&app, &ada, items.clone()).await;
    assert_eq!(bound(ada.id).await, Some(3), "counted 2, then raised");
    refused().await;
    assert_eq!(
        app.stock(mug).await,
        99,
        "one order holds one; the cancelled gave its back"
    );
}

/// Many orders of one customer at once: each counts the customer's pending orders under
/// the customer's row lock, so exactly as many as the cap allows get through.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_orders_of_one_customer_stop_exactly_at_the_cap(pool: MySqlPool) {
    // A pool wide enough for every order of a round to be in flight at once.
    let wide = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(16)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let mut state = testkit::state(wide);
    state.order_limits.max_pending = 3;
    let app = Arc::new(TestApp::with_state(state, orders::router));
    let mug = app.product("Mug", "4", 100_000).await;
    const ROUNDS: usize = 16;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let ada = Arc::new(app.customer().await);
        let responses = in_parallel(12, |i| {
            let (app, ada) = (app.clone(), ada.clone());
            async move {
                let mut call = app.post("/orders").token(&ada.token);
                // Half with a key, half without: both paths count the same way.
                if i % 2 == 0 {
                    call = call.header("idempotency-key", &format!("k{i}"));
                }
                let r = call
                    .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
                    .send()
                    .await;
                (r.status.as_u16(), r.body)
            }
        })
        .await;
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM orders WHERE user_id = ? AND status = 'pending'",
        )
        .bind(ada.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
        let (created, capped, other) = tally(&responses);
        if (created, capped, pending) != (3, 9, 3) || !other.is_empty() {
            broken.push(format!(
                "round {round}: {created} placed, {capped} refused, {other:?} else, {pending} pending"
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {ROUNDS} rounds broke:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_users_orders_are_paged_newest_first_and_filtered(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "1", 1000).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(
            order(&app, &ada, json!([{"product_id": mug, "quantity": 1}])).await["id"]
                .as_u64()
                .unwrap(),
        );
    }
    // Equal timestamps: the id breaks the tie.
    sqlx::query("UPDATE orders SET created_at = '2026-05-05 10:00:00'")
        .execute(app.pool())
        .await
        .unwrap();
    set_status(&app, ids[2], "paid").await;
    set_status(&app, ids[5], "paid").await;

    let mut seen = Vec::new();
    let mut uri = format!("/users/{}/orders?limit=3", ada.id);
    loop {
        let page = app
            .get(&uri)
            .token(&ada.token)
            .send()
            .await
            .expect(200)
            .clone();
        for o in page["items"].as_array().unwrap() {
            assert!(
                o["total"].is_number()
                    && o["amount_paid"].is_number()
                    && o["created_at"].is_string()
            );
            seen.push(o["id"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/users/{}/orders?limit=3&cursor={c}", ada.id),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let paid = app
        .get(&format!("/users/{}/orders?status=paid", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    let paid_ids: Vec<u64> = paid["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_u64().unwrap())
        .collect();
    assert_eq!(paid_ids, [ids[5], ids[2]]);
    let french = app
        .get(&format!("/users/{}/orders?status=pay%C3%A9e", ada.id))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(french.expect(200)["items"].as_array().unwrap().len(), 2);

    app.get(&format!("/users/{}/orders?status=lost", ada.id))
        .token(&ada.token)
        .send()
        .await
        .invalid_field("status");
    app.get(&format!("/users/{}/orders?cursor=xyz", ada.id))
        .token(&ada.token)
        .send()
        .await
        .invalid_field("cursor");
    app.get(&format!("/users/{}/orders", ada.id))
        .token(&bob.token)
        .send()
        .await
        .problem(404);
    app.get(&format!("/users/{}/orders", ada.id))
        .token(&admin.token)
        .send()
        .await
        .expect(200);
    app.get("/users/999999/orders")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn idempotent_retries_replay_the_first_response(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;
    let body = json!({"items": [{"product_id": mug, "quantity": 2}]});
    let post = |key: &'static str, body: Value| {
        let app = &app;
        let token = ada.token.clone();
        async move {
            app.post("/orders")
                .token(&token)
                .header("idempotency-key", key)
                .json(body)
                .send()
                .await
        }
    };

    let first = post("order-1", body.clone()).await;
    first.expect(201);
    let retry = post(
        "order-1",
        json!({"items": [{"quantity": 2, "product_id": mug}]}),
    )
    .await;
    assert_eq!(retry.status, 201);
    assert_eq!(retry.raw, first.raw, "byte for byte");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.stock(mug).await, 8);

    post(
        "order-1",
        json!({"items": [{"product_id": mug, "quantity": 3}]}),
    )
    .await
    .problem(409);

    // A refusal is a completed response: replayed even after the stock comes back.
    let short = post(
        "order-2",
        json!({"items": [{"product_id": mug, "quantity": 50}]}),
    )
    .await;
    short.problem(409);
    sqlx::query("UPDATE variants SET stock = 100 WHERE product_id = ?")
        .bind(mug)
        .execute(app.pool())
        .await
        .unwrap();
    let replayed = post(
        "order-2",
        json!({"items": [{"product_id": mug, "quantity": 50}]}),
    )
    .await;
    assert_eq!(
        (replayed.status, replayed.raw.clone()),
        (short.status, short.raw.clone())
    );

    // Invalid input is not stored: the corrected request goes through under the same key.
    post(
        "order-3",
        json!({"items": [{"product_id": mug, "quantity": 0}]}),
    )
    .await
    .problem(400);
    post(
        "order-3",
        json!({"items": [{"product_id": mug, "quantity": 1}]}),
    )
    .await
    .expect(201);

    // Keys belong to a user: Bob's "order-1" is his own.
    let bob = app.customer().await;
    app.post("/orders")
        .token(&bob.token)
        .header("idempotency-key", "order-1")
        .json(body.clone())
        .send()
        .await
        .expect(201);

    let long = "k".repeat(256);
    app.post("/orders")
        .token(&ada.token)
        .header("idempotency-key", &long)
        .json(body.clone())
        .send()
        .await
        .problem(400);
    assert_eq!(app.count("orders").await, 3);
}

/// An order for oneself confirms the token with the lock the order takes anyway, and a keyed
/// one before its key can replay anything: a revoked token or a deleted account's places
/// nothing and reads no stored answer.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_revoked_or_deleted_accounts_token_places_and_replays_nothing(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;
    let body = json!({"items": [{"product_id": mug, "quantity": 1}]});
    let post = |token: String, key: Option<&'static str>| {
        let (app, body) = (&app, body.clone());
        async move {
            let call = app.post("/orders").token(&token).json(body);
            match key {
                Some(key) => call.header("idempotency-key", key).send().await,
                None => call.send().await,
            }
        }
    };
    post(ada.token.clone(), Some("first")).await.expect(201);

    // A password change or a logout everywhere raises the account's token version.
    sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = ?")
        .bind(ada.id)
        .execute(app.pool())
        .await
        .unwrap();
    let revoked = post(ada.token.clone(), None).await;
    assert_eq!(
        revoked.problem(401)["detail"],
        "The access token has been revoked."
    );
    let replay = post(ada.token.clone(), Some("first")).await;
    replay.problem(401);
    assert!(replay.header("location").is_none());

    let bob = app.customer().await;
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(bob.id)
        .execute(app.pool())
        .await
        .unwrap();
    post(bob.token.clone(), None).await.problem(401);
    post(bob.token.clone(), Some("bobs")).await.problem(401);

    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.stock(mug).await, 9);
}

/// What an order costs the database, counted by the server on the one connection the
/// router gets. A flash sale's order (for oneself, no key, no code, no address) runs: BEGIN,
/// the owner admitted (one update that locks their row, confirms the token and raises the
/// bound on their pending orders), the variants' prices, the order, its history, its lines,
/// its event, a savepoint and the stock (one round trip), COMMIT: one read. A customer's
/// first order finds the bound unknown, so it reads the row under the lock that update
/// took, counts their pending orders and sets the bound: three more statements, two more
/// reads. The order that takes a variant's last unit undoes to the savepoint, takes the
/// stock again with its levels read back (one round trip), and reads the product (two
/// reads) for the out-of-stock event it records: six more statements, three more reads.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_order_for_oneself_runs_ten_statements(pool: MySqlPool) {
    let options = (*pool.connect_options()).clone();
    let one = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let app = app(one.clone());
    let ada = app.customer().await;
    let bob = app.customer().await;
    let mug = app.product("Mug", "4", 4).await;
    let items = json!([{"product_id": mug, "quantity": 1}]);
    let counters = || async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SHOW SESSION STATUS WHERE Variable_name IN \
             ('Questions', 'Com_select', 'Com_rollback_to_savepoint')",
        )
        .fetch_all(&one)
        .await
        .unwrap();
        let value = |name: &str| -> i64 {
            rows.iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .parse()
                .unwrap()
        };
        [
            value("Questions"),
            value("Com_select"),
            value("Com_rollback_to_savepoint"),
        ]
    };
    let cost = |before: [i64; 3], after: [i64; 3]| {
        // The second SHOW counts itself as a question.
        [
            after[0] - before[0] - 1,
            after[1] - before[1],
            after[2] - before[2],
        ]
    };
    // The first order prepares the statements the connection then keeps.
    order(&app, &ada, items.clone()).await;
    let before = counters().await;
    order(&app, &ada, items.clone()).await;
    let leaving_one = cost(before, counters().await);
    assert_eq!(leaving_one, [10, 1, 0], "statements, reads, undos");
    assert_eq!(app.stock(mug).await, 2);

    let before = counters().await;
    order(&app, &bob, items.clone()).await;
    let counting = cost(before, counters().await);
    assert_eq!(counting, [13, 3, 0], "statements, reads, undos");
    assert_eq!(app.stock(mug).await, 1);

    let before = counters().await;
    order(&app, &ada, items).await;
    let the_last = cost(before, counters().await);
    assert_eq!(the_last, [16, 4, 1], "statements, reads, undos");
    assert_eq!(app.stock(mug).await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn keys_expire_after_a_day(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;
    let body = json!({"items": [{"product_id": mug, "quantity": 1}]});
    app.post("/orders")
        .token(&ada.token)
        .header("idempotency-key", "k")
        .json(body.clone())
        .send()
        .await
        .expect(201);
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - INTERVAL 23 HOUR")
        .execute(app.pool())
        .await
        .unwrap();
    app.post("/orders")
        .token(&ada.token)
        .header("idempotency-key", "k")
        .json(body.clone())
        .send()
        .await
        .expect(201);
    assert_eq!(app.count("orders").await, 1, "still replayed within 24 h");
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - INTERVAL 2 HOUR")
        .execute(app.pool())
        .await
        .unwrap();
    app.post("/orders")
        .token(&ada.token)
        .header("idempotency-key", "k")
        .json(body)
        .send()
        .await
        .expect(201);
    assert_eq!(app.count("orders").await, 2, "a fresh start after 24 h");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn fifty_parallel_orders_for_ten_in_stock_sell_exactly_ten(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let mug = app.product("Mug", "4", 10).await;
    let mut buyers = Vec::new();
    for _ in 0..50 {
        buyers.push(app.customer().await);
    }
    let attempts: Vec<_> = buyers
        .into_iter()
        .map(|buyer| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post("/orders")
                    .token(&buyer.token)
                    .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
                    .send()
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        40,
        "{statuses:?}"
    );
    assert_eq!(app.stock(mug).await, 0);
    assert_eq!(app.count("orders").await, 10);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn crossing_orders_on_the_same_products_never_deadlock_into_errors(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let a = app.product("A", "1", 1000).await;
    let b = app.product("B", "1", 1000).await;
    // A buyer each: one customer's orders take turns on their row.
    let mut buyers = Vec::new();
    for _ in 0..30 {
        buyers.push(Arc::new(app.customer().await));
    }
    let statuses = in_parallel(30, |i| {
        let (app, user) = (app.clone(), buyers[i].clone());
        let items = if i % 2 == 0 {
            json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}])
        } else {
            json!([{"product_id": b, "quantity": 1}, {"product_id": a, "quantity": 1}])
        };
        async move {
            app.post("/orders")
                .token(&user.token)
                .json(json!({"items": items}))
                .send()
                .await
                .status
                .as_u16()
        }
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(app.stock(a).await, 970);
    assert_eq!(app.stock(b).await, 970);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn twenty_parallel_identical_idempotent_requests_make_one_order(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let mug = app.product("Mug", "4", 100).await;
    let ada = Arc::new(app.customer().await);
    let responses = in_parallel(20, |_| {
        let (app, ada) = (app.clone(), ada.clone());
        async move {
            let r = app
                .post("/orders")
                .token(&ada.token)
                .header("idempotency-key", "same")
                .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
                .send()
                .await;
            (r.status.as_u16(), r.raw)
        }
    })
    .await;
    assert!(
        responses.iter().all(|(status, _)| *status == 201),
        "{:?}",
        responses.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(
        responses.iter().all(|(_, body)| *body == responses[0].1),
        "every response is the first one"
    );
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.stock(mug).await, 99);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn orders_through_lambda_events(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;
    let auth =
        json!({"authorization": format!("Bearer {}", ada.token), "idempotency-key": "lambda-1"});
    let body = format!(r#"{{"items":[{{"product_id":{mug},"quantity":2}}]}}"#);
    let created = invoke_lambda(
        app.router.clone(),
        http_api_event("POST", "/orders", "", auth.clone(), Some(&body)),
    )
    .await;
    assert_eq!(created["statusCode"], 201);
    let id = lambda_body(&created)["id"].as_u64().unwrap();
    let replay = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "POST",
            "/orders",
            json!({}),
            auth.clone(),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(replay["body"], created["body"]);
    let listed = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "GET",
            &format!("/users/{}/orders", ada.id),
            json!({"status": "pending"}),
            auth,
            None,
        ),
    )
    .await;
    assert_eq!(listed["statusCode"], 200);
    assert_eq!(lambda_body(&listed)["items"][0]["id"], id);
}

fn rfc3339(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .to_utc()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_pending_order_holds_its_stock_until_its_hold_runs_out(pool: MySqlPool) {
    let mut state = testkit::state(pool);
    state.order_limits.hold = std::time::Duration::from_secs(5);
    let app = TestApp::with_state(state, orders::router);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;

    let placed = order(&app, &ada, json!([{"product_id": mug, "quantity": 4}])).await;
    let id = placed["id"].as_u64().unwrap();
    let hold = rfc3339(&placed["expires_at"]) - rfc3339(&placed["created_at"]);
    assert_eq!(hold.num_seconds(), 5, "ORDER_HOLD_SECONDS after creation");
    assert_eq!(app.stock(mug).await, 6);

    // Its time passes: the next read finds it cancelled by the system, stock back.
    app.expire(id).await;
    let seen = app
        .get(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(seen["status"], "cancelled");
    assert_eq!(seen["expires_at"], Value::Null);
    assert_eq!(app.stock(mug).await, 10);

    // Listings settle first too, so a status filter never returns an expired order.
    let other = order(&app, &ada, json!([{"product_id": mug, "quantity": 1}])).await;
    app.expire(other["id"].as_u64().unwrap()).await;
    let pending = app
        .get(&format!("/users/{}/orders?status=pending", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(pending["items"], json!([]));
    let all = app
        .get(&format!("/users/{}/orders", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    let statuses: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["cancelled", "cancelled"]);
    assert_eq!(app.stock(mug).await, 10);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_expired_order_cannot_be_moved_but_can_be_cancelled_or_deleted(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 10).await;

    let first = order(&app, &ada, json!([{"product_id": mug, "quantity": 2}])).await;
    let id = first["id"].as_u64().unwrap();
    app.expire(id).await;
    // The customer's cancel finds it already cancelled by the system: a no-op 200.
    let cancelled = app
        .put(&format!("/orders/{id}"))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await;
    assert_eq!(cancelled.expect(200)["status"], "cancelled");
    assert_eq!(app.stock(mug).await, 10, "returned once, not twice");

    let second = order(&app, &ada, json!([{"product_id": mug, "quantity": 3}])).await;
    let id = second["id"].as_u64().unwrap();
    app.expire(id).await;
    // An admin cannot move it on: it is cancelled now.
    let moved = app
        .put(&format!("/orders/{id}"))
        .token(&admin.token)
        .json(json!({"status": "processing"}))
        .send()
        .await;
    assert_eq!(
        moved.problem(409)["type"],
        "/problems/invalid-status-transition"
    );
    assert_eq!(app.stock(mug).await, 10);
    app.delete(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    assert_eq!(app.stock(mug).await, 10);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn only_pending_orders_show_a_hold(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;
    let placed = order(&app, &ada, json!([{"product_id": mug, "quantity": 1}])).await;
    assert!(placed["expires_at"].is_string());
    let id = placed["id"].as_u64().unwrap();
    set_status(&app, id, "paid").await;
    // A paid order's deadline has passed: it is sold, nothing expires.
    app.expire(id).await;
    let seen = app
        .get(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(seen["status"], "paid");
    assert_eq!(seen["expires_at"], Value::Null);
    assert_eq!(app.stock(mug).await, 9);
}

/// Stock is taken last, after the order is written, so it can sell out while an order is
/// being written: the order is then refused as if it had never started, and under an
/// idempotency key the refusal is what a retry gets.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn stock_sold_out_while_the_order_is_written_refuses_it_and_keeps_nothing(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let ada = Arc::new(app.customer().await);
    let mug = app.product("Mug", "4", 10).await;
    let pen = app.product("Pen", "1", 10).await;

    // Another buyer holds the mug's row and is about to take all of it.
    let mut rival = app.pool().begin().await.unwrap();
    sqlx::query("UPDATE variants SET stock = 0 WHERE product_id = ?")
        .bind(mug)
        .execute(&mut *rival)
        .await
        .unwrap();
    let placing = tokio::spawn({
        let (app, ada) = (app.clone(), ada.clone());
        async move {
            app.post("/orders")
                .token(&ada.token)
                .header("idempotency-key", "late")
                .json(json!({"items": [{"product_id": pen, "quantity": 1},
                                       {"product_id": mug, "quantity": 2}]}))
                .send()
                .await
        }
    });
    testkit::until_the_stock_is_being_taken(app.pool(), &placing).await;
    rival.commit().await.unwrap();
    let refused = placing.await.unwrap();
    let problem = refused.problem(409);
    assert_eq!(problem["type"], "/problems/insufficient-stock");
    assert_eq!(problem["errors"][0]["field"], "items");
    assert_eq!(
        problem["errors"][0]["message"],
        format!("product {mug} has 0 in stock, 2 requested")
    );
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.count("order_items").await, 0);
    assert_eq!(app.count("order_status_history").await, 0);
    assert_eq!(
        app.stock(pen).await,
        10,
        "the pen, taken first, is not kept"
    );

    // The retry under the same key replays the refusal, even now that stock is back.
    sqlx::query("UPDATE variants SET stock = 5 WHERE product_id = ?")
        .bind(mug)
        .execute(app.pool())
        .await
        .unwrap();
    let replay = app
        .post("/orders")
        .token(&ada.token)
        .header("idempotency-key", "late")
        .json(json!({"items": [{"product_id": pen, "quantity": 1},
                               {"product_id": mug, "quantity": 2}]}))
        .send()
        .await;
    assert_eq!(replay.status, 409);
    assert_eq!(replay.raw, refused.raw);
    assert_eq!(app.count("orders").await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_product_deleted_while_the_order_is_written_is_named(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let ada = Arc::new(app.customer().await);
    let mug = app.product("Mug", "4", 10).await;

    let mut rival = app.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM variants WHERE product_id = ? FOR UPDATE")
        .bind(mug)
        .execute(&mut *rival)
        .await
        .unwrap();
    let placing = tokio::spawn({
        let (app, ada) = (app.clone(), ada.clone());
        async move {
            app.post("/orders")
                .token(&ada.token)
                .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
                .send()
                .await
        }
    });
    testkit::until_the_stock_is_being_taken(app.pool(), &placing).await;
    sqlx::query("DELETE FROM products WHERE id = ?")
        .bind(mug)
        .execute(&mut *rival)
        .await
        .unwrap();
    rival.commit().await.unwrap();
    let refused = placing.await.unwrap();
    let problem = refused.problem(400);
    assert_eq!(
        problem["errors"][0]["message"],
        format!("product {mug} does not exist")
    );
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.count("order_items").await, 0);
}

/// Thirty buyers with their own keys for ten in stock: ten orders, twenty refusals, and
/// each buyer's retry gets exactly what they got the first time.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_keyed_orders_for_scarce_stock_replay_what_each_got(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let mug = app.product("Mug", "4", 10).await;
    let pen = app.product("Pen", "1", 1000).await;
    let mut buyers = Vec::new();
    for _ in 0..30 {
        buyers.push(Arc::new(app.customer().await));
    }
    let buy = |app: Arc<TestApp>, buyer: Arc<TestUser>| async move {
        let r = app
            .post("/orders")
            .token(&buyer.token)
            .header("idempotency-key", "flash")
            .json(json!({"items": [{"product_id": mug, "quantity": 1},
                                   {"product_id": pen, "quantity": 1}]}))
            .send()
            .await;
        (r.status.as_u16(), r.raw)
    };
    let first = in_parallel(30, |i| buy(app.clone(), buyers[i].clone())).await;
    let again = in_parallel(30, |i| buy(app.clone(), buyers[i].clone())).await;
    let statuses: Vec<u16> = first.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(first, again, "every retry replays its first answer");
    assert_eq!(app.stock(mug).await, 0);
    assert_eq!(app.stock(pen).await, 990);
    assert_eq!(app.count("orders").await, 10);
    assert_eq!(app.count("order_items").await, 20);
}
