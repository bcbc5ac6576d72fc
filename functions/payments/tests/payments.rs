use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{
    TestApp, TestUser, http_api_event, in_parallel, invoke_lambda, lambda_body, rest_api_event,
};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, payments::router)
}

/// A pending order of `user` with the given total.
async fn order(app: &TestApp, user: &TestUser, total: &str) -> u64 {
    sqlx::query("INSERT INTO orders (user_id, total, expires_at) VALUES (?, ?, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)")
        .bind(user.id)
        .bind(total)
        .execute(app.pool())
        .await
        .unwrap()
        .last_insert_id()
}

async fn order_state(app: &TestApp, id: u64) -> (String, String) {
    sqlx::query_as(
        "SELECT CAST(status AS CHAR), CAST(amount_paid AS CHAR) FROM orders WHERE id = ?",
    )
    .bind(id)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

async fn pay(
    app: &TestApp,
    user: &TestUser,
    order_id: u64,
    amount: Value,
) -> testkit::TestResponse {
    app.post("/payments")
        .token(&user.token)
        .json(json!({"order_id": order_id, "amount": amount, "method": "card"}))
        .send()
        .await
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn payments_add_up_and_the_last_one_marks_the_order_paid(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let id = order(&app, &ada, "30.00").await;

    let first = pay(&app, &ada, id, json!(10.1)).await;
    let payment = first.expect(201).clone();
    assert_eq!(
        first.header("location"),
        Some(format!("/payments/{}", payment["id"]).as_str())
    );
    assert_eq!(payment["order_id"], id);
    assert_eq!(payment["method"], "card");
    assert_eq!(payment["status"], "completed");
    assert!(String::from_utf8_lossy(&first.raw).contains("\"amount\":10.10"));
    assert_eq!(
        order_state(&app, id).await,
        ("pending".into(), "10.10".into())
    );

    app.post("/payments")
        .token(&ada.token)
        .json(json!({"order_id": id, "amount": 9.9, "method": "paypal"}))
        .send()
        .await
        .expect(201);
    let over = pay(&app, &ada, id, json!(10.01)).await;
    assert_eq!(over.problem(409)["type"], "/problems/overpayment");
    assert!(over.body["detail"].as_str().unwrap().contains("10.00"));
    app.post("/payments")
        .token(&ada.token)
        .json(json!({"order_id": id, "amount": 10, "method": "bank_transfer"}))
        .send()
        .await
        .expect(201);
    assert_eq!(order_state(&app, id).await, ("paid".into(), "30.00".into()));

    let late = pay(&app, &ada, id, json!(1)).await;
    assert_eq!(late.problem(409)["type"], "/problems/order-not-payable");

    let list = app
        .get(&format!("/orders/{id}/payments"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    let amounts: Vec<f64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount"].as_f64().unwrap())
        .collect();
    assert_eq!(amounts, [10.1, 9.9, 10.0]);
    let one = app
        .get(&format!("/payments/{}", payment["id"]))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(one.expect(200), &payment);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn bad_payments_are_refused_and_change_nothing(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let id = order(&app, &ada, "30.00").await;
    let body =
        |amount: Value, method: &str| json!({"order_id": id, "amount": amount, "method": method});
    let cases = [
        (body(json!(0), "card"), "amount"),
        (body(json!(-5), "card"), "amount"),
        (body(json!(1.001), "card"), "amount"),
        (body(json!("10"), "card"), "amount"),
        (body(json!("NaN"), "card"), "amount"),
        (body(json!(1e308), "card"), "amount"),
        (body(json!(100000000), "card"), "amount"),
        (body(json!(1), "cash"), "method"),
        (json!({"order_id": id, "amount": 1, "method": 1}), "method"),
        (
            json!({"order_id": id, "amount": 1, "method": null}),
            "method",
        ),
        (
            json!({"order_id": id, "amount": 1, "method": ["card"]}),
            "method",
        ),
        (
            json!({"order_id": id, "amount": 1, "method": {"card": {}}}),
            "method",
        ),
        (json!({"order_id": id, "method": "card"}), "amount"),
        (
            json!({"order_id": 0, "amount": 1, "method": "card"}),
            "order_id",
        ),
        (
            json!({"order_id": id, "amount": 1, "method": "card", "tip": 1}),
            "tip",
        ),
    ];
    for (b, field) in cases {
        app.post("/payments")
            .token(&ada.token)
            .json(b)
            .send()
            .await
            .invalid_field(field);
    }
    pay(&app, &ada, 999999, json!(1)).await.problem(404);
    let other = pay(&app, &bob, id, json!(1)).await;
    other.problem(404);
    app.post("/payments")
        .json(body(json!(1), "card"))
        .send()
        .await
        .problem(401);

    let cancelled = order(&app, &ada, "5").await;
    sqlx::query("UPDATE orders SET status = 'cancelled' WHERE id = ?")
        .bind(cancelled)
        .execute(app.pool())
        .await
        .unwrap();
    pay(&app, &ada, cancelled, json!(1)).await.problem(409);

    let payments: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(payments, 0);
    assert_eq!(
        order_state(&app, id).await,
        ("pending".into(), "0.00".into())
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn payments_are_visible_to_the_order_owner_and_admins_only(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let admin = app.admin().await;
    let id = order(&app, &ada, "30.00").await;
    let payment = pay(&app, &ada, id, json!(5)).await.expect(201).clone();

    app.get(&format!("/payments/{}", payment["id"]))
        .token(&bob.token)
        .send()
        .await
        .problem(404);
    app.get(&format!("/orders/{id}/payments"))
        .token(&bob.token)
        .send()
        .await
        .problem(404);
    app.get(&format!("/payments/{}", payment["id"]))
        .token(&admin.token)
        .send()
        .await
        .expect(200);
    app.get(&format!("/orders/{id}/payments"))
        .token(&admin.token)
        .send()
        .await
        .expect(200);
    app.get("/payments/999999")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    app.get("/orders/999999/payments")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    // An admin may pay on a customer's behalf.
    pay(&app, &admin, id, json!(25)).await.expect(201);
    assert_eq!(order_state(&app, id).await.0, "paid");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn twenty_parallel_payments_of_a_third_never_exceed_the_total(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let ada = Arc::new(app.customer().await);
    let id = order(&app, &ada, "30.00").await;
    let statuses = in_parallel(20, |_| {
        let (app, ada) = (app.clone(), ada.clone());
        async move { pay(&app, &ada, id, json!(10)).await.status.as_u16() }
    })
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        17,
        "{statuses:?}"
    );
    let paid: String =
        sqlx::query_scalar("SELECT CAST(SUM(amount) AS CHAR) FROM payments WHERE order_id = ?")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(paid, "30.00");
    assert_eq!(order_state(&app, id).await, ("paid".into(), "30.00".into()));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn idempotent_payment_retries_create_one_payment(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let ada = Arc::new(app.customer().await);
    let id = order(&app, &ada, "30.00").await;
    let responses = in_parallel(10, |_| {
        let (app, ada) = (app.clone(), ada.clone());
        async move {
            let r = app
                .post("/payments")
                .token(&ada.token)
                .header("idempotency-key", "pay-1")
                .json(json!({"order_id": id, "amount": 12.5, "method": "card"}))
                .send()
                .await;
            (r.status.as_u16(), r.raw)
        }
    })
    .await;
    assert!(
        responses
            .iter()
            .all(|r| r.0 == 201 && r.1 == responses[0].1)
    );
    assert_eq!(
        order_state(&app, id).await,
        ("pending".into(), "12.50".into())
    );
    let reused = app
        .post("/payments")
        .token(&ada.token)
        .header("idempotency-key", "pay-1")
        .json(json!({"order_id": id, "amount": 1, "method": "card"}))
        .send()
        .await;
    assert_eq!(
        reused.problem(409)["type"],
        "/problems/idempotency-key-reused"
    );
    let payments: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(payments, 1);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn payments_through_lambda_events(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let id = order(&app, &ada, "8.00").await;
    let auth = json!({"authorization": format!("Bearer {}", ada.token)});
    let body = format!(r#"{{"order_id":{id},"amount":8,"method":"paypal"}}"#);
    let created = invoke_lambda(
        app.router.clone(),
        http_api_event("POST", "/payments", "", auth.clone(), Some(&body)),
    )
    .await;
    assert_eq!(created["statusCode"], 201);
    let listed = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "GET",
            &format!("/orders/{id}/payments"),
            json!({}),
            auth,
            None,
        ),
    )
    .await;
    assert_eq!(listed["statusCode"], 200);
    assert_eq!(
        lambda_body(&listed)["items"][0]["id"],
        lambda_body(&created)["id"]
    );
}
