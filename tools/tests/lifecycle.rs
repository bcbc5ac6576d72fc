//! An order's life across functions: paid through `payments`, cancelled and deleted
//! through `orders`, each with its own router over one database.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::TestApp;

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_pending_order_with_money_on_it_is_cancelled_before_it_can_be_deleted(pool: MySqlPool) {
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

    // Cancelling refunds the payment and returns the stock; then the order may go.
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
    orders
        .delete(&format!("/orders/{order}"))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
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
