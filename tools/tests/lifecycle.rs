//! An order's life across functions: paid through `payments`, cancelled and deleted
//! through `orders`, each with its own router over one database.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::TestApp;

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_order_with_money_on_it_is_cancelled_and_never_deleted(pool: MySqlPool) {
    let orders = TestApp::new(pool.clone(), orders::router);
    let payments = TestApp::new(pool, payments::router);
    let ada = orders.customer().await;
    let mug = orders.product("Mug", "10.00", 10).await;
    let order = orders
        .post("/orders")
        .token(&ada.token)
        .json(json!({"items": [{"product_id": mug, "quantity": 2}]}))
        .send()
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();
    let payment = payments
        .post("/payments")
        .token(&ada.token)
        .json(json!({"order_id": order, "amount": 5.00, "method": "card"}))
        .send()
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();

    let refused = orders
        .delete(&format!("/orders/{order}"))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(refused.problem(409)["type"], "/problems/order-has-payments");
    let kept = payments
        .get(&format!("/payments/{payment}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(
        kept["status"], "completed",
        "the money's record is still there"
    );
    assert_eq!(
        orders.stock(mug).await,
        8,
        "and the order still holds its stock"
    );

    // Cancelling refunds the payment and returns the stock; the order stays, as the
    // record of the money that came and went back.
    orders
        .put(&format!("/orders/{order}"))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    let refunded = payments
        .get(&format!("/payments/{payment}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(orders.stock(mug).await, 10);
    let refused = orders
        .delete(&format!("/orders/{order}"))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(refused.problem(409)["type"], "/problems/order-has-payments");
    assert_eq!(payments.count("payments").await, 1);
    assert_eq!(orders.stock(mug).await, 10, "returned once");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_payment_for_an_expired_order_is_refused_and_settles_it(pool: MySqlPool) {
    let orders = TestApp::new(pool.clone(), orders::router);
    let payments = TestApp::new(pool, payments::router);
    let ada = orders.customer().await;
    let mug = orders.product("Mug", "10.00", 10).await;
    let order = orders
        .post("/orders")
        .token(&ada.token)
        .json(json!({"items": [{"product_id": mug, "quantity": 2}]}))
        .send()
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();
    orders.expire(order).await;

    let late = payments
        .post("/payments")
        .token(&ada.token)
        .json(json!({"order_id": order, "amount": 20.00, "method": "card"}))
        .send()
        .await;
    late.problem(409);
    assert_eq!(payments.count("payments").await, 0, "no money taken");
    assert_eq!(orders.stock(mug).await, 10, "the hold is released");
    let seen = orders
        .get(&format!("/orders/{order}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(seen["status"], "cancelled");
}

/// After its customer deleted their account, an order and its payments stay as records
/// that admins can read: no owner, no name or address, the money as it stood.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_anonymised_order_stays_readable_by_admins(pool: MySqlPool) {
    let users = TestApp::new(pool.clone(), users::router);
    let orders = TestApp::new(pool.clone(), orders::router);
    let payments = TestApp::new(pool, payments::router);
    let ada = orders.customer().await;
    let bob = orders.customer().await;
    let admin = orders.admin().await;
    let mug = orders.product("Mug", "10.00", 10).await;
    let order = orders
        .post("/orders")
        .token(&ada.token)
        .json(json!({
            "items": [{"product_id": mug, "quantity": 2}],
            "shipping_address": {"name": "Ada Lovelace", "line1": "12 Rue de la Paix",
                                 "postal_code": "75002", "city": "Paris", "country": "FR"}
        }))
        .send()
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();
    let payment = payments
        .post("/payments")
        .token(&ada.token)
        .json(json!({"order_id": order, "amount": 5.00, "method": "card"}))
        .send()
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();
    users
        .delete(&format!("/users/{}", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(204);

    let seen = orders
        .get(&format!("/orders/{order}"))
        .token(&admin.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(seen["user_id"], json!(null));
    assert_eq!(seen["shipping_address"], json!(null));
    assert_eq!(seen["status"], "cancelled");
    assert_eq!(seen["amount_paid"], json!(0.0));
    assert_eq!(seen["total"], json!(20.0));
    assert_eq!(seen["items"][0]["quantity"], 2);
    let last = seen["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["status"], &last["actor"]),
        (&json!("cancelled"), &json!("customer"))
    );
    let listed = payments
        .get(&format!("/orders/{order}/payments"))
        .token(&admin.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(listed["items"][0]["id"], payment);
    assert_eq!(listed["items"][0]["status"], "refunded");
    payments
        .get(&format!("/payments/{payment}"))
        .token(&admin.token)
        .send()
        .await
        .expect(200);
    assert_eq!(orders.stock(mug).await, 10);

    // Only admins: another customer is told it does not exist, the old token is revoked.
    for path in [
        format!("/orders/{order}"),
        format!("/orders/{order}/payments"),
    ] {
        let app = if path.ends_with("payments") {
            &payments
        } else {
            &orders
        };
        app.get(&path).token(&bob.token).send().await.problem(404);
        app.get(&path).token(&ada.token).send().await.problem(401);
    }
    payments
        .get(&format!("/payments/{payment}"))
        .token(&bob.token)
        .send()
        .await
        .problem(404);
}
