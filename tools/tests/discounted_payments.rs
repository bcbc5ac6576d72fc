//! Payments, refunds and `amount_paid` work on an order's discounted total.

use serde_json::json;
use sqlx::MySqlPool;

mod common;
use common::Shop;

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_discounted_order_is_paid_and_refunded_on_its_total(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let ada = shop.orders.customer().await;
    let admin = shop.orders.admin().await;
    let mug = shop.orders.product("Mug", "10", 10).await;
    sqlx::query(
        "INSERT INTO discounts (code, kind, value, starts_at) VALUES ('QUARTER', 'percent', 25, UTC_TIMESTAMP(6))",
    )
    .execute(shop.pool())
    .await
    .unwrap();
    let order = shop
        .orders
        .post("/orders")
        .token(&ada.token)
        .json(json!({"items": [{"product_id": mug, "quantity": 2}], "discount_code": "QUARTER"}))
        .send()
        .await
        .expect(201)
        .clone();
    assert_eq!(order["subtotal"], json!(20.0));
    assert_eq!(order["discount"]["amount"], json!(5.0));
    assert_eq!(order["total"], json!(15.0));
    let id = order["id"].as_u64().unwrap();
    let pay = |amount: f64| {
        let (shop, token) = (&shop, ada.token.clone());
        async move {
            shop.payments
                .post("/payments")
                .token(&token)
                .json(json!({"order_id": id, "amount": amount, "method": "card"}))
                .send()
                .await
        }
    };
    let over = pay(20.0).await;
    assert!(
        over.problem(409)["type"]
            .as_str()
            .unwrap()
            .ends_with("overpayment")
    );
    pay(15.0).await.expect(201);
    let paid = shop
        .orders
        .get(&format!("/orders/{id}"))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["amount_paid"], json!(15.0));

    let cancelled = shop
        .orders
        .put(&format!("/orders/{id}"))
        .token(&admin.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(cancelled["amount_paid"], json!(0.0));
    let refunded: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(status AS CHAR), CAST(amount AS CHAR) FROM payments WHERE order_id = ?",
    )
    .bind(id)
    .fetch_all(shop.pool())
    .await
    .unwrap();
    assert_eq!(
        refunded,
        vec![("refunded".to_string(), "15.00".to_string())]
    );
    let used: u32 = sqlx::query_scalar("SELECT times_used FROM discounts WHERE code = 'QUARTER'")
        .fetch_one(shop.pool())
        .await
        .unwrap();
    assert_eq!(used, 0);
    assert_eq!(shop.orders.stock(mug).await, 10);
}
