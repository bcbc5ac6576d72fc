//! Checkout with a discount code: the same rules as `POST /orders`, and a refused code
//! leaves the cart as it was.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::TestApp;

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, cart::router)
}

async fn times_used(app: &TestApp) -> u32 {
    sqlx::query_scalar("SELECT times_used FROM discounts WHERE code = 'CART-15'")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn checkout_applies_a_code_and_a_refusal_keeps_the_cart(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "33.33", 10).await;
    sqlx::query(
        "INSERT INTO discounts (code, kind, value, starts_at, min_subtotal, per_customer_limit)
         VALUES ('CART-15', 'percent', 15, UTC_TIMESTAMP(6), 30, 1)",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let base = format!("/users/{}/cart", ada.id);
    app.put(&format!("{base}/items/{mug}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .expect(200);

    let unknown = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .json(json!({"discount_code": "NOPE"}))
        .send()
        .await;
    assert!(
        unknown.problem(409)["type"]
            .as_str()
            .unwrap()
            .ends_with("discount-not-applicable")
    );
    app.post(&format!("{base}/checkout"))
        .token(&ada.token)
        .json(json!({"discount_code": "x"}))
        .send()
        .await
        .invalid_field("discount_code");
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.count("cart_items").await, 1, "the cart is kept");
    assert_eq!(app.stock(mug).await, 10);

    let response = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .json(json!({"discount_code": "cart-15"}))
        .send()
        .await;
    let order = response.expect(201).clone();
    let raw = String::from_utf8_lossy(&response.raw).to_string();
    // 15 % of 33.33 is 4.9995, rounded once to 5.00.
    assert!(raw.contains("\"subtotal\":33.33"), "{raw}");
    assert!(
        raw.contains(r#""discount":{"code":"CART-15","kind":"percent","value":15,"amount":5.00}"#),
        "{raw}"
    );
    assert!(raw.contains("\"total\":28.33"), "{raw}");
    assert_eq!(order["status"], "pending");
    assert_eq!(app.count("cart_items").await, 0);
    assert_eq!(app.stock(mug).await, 9);
    assert_eq!(times_used(&app).await, 1);

    // Used once by this customer: the next checkout is refused and keeps the cart.
    app.put(&format!("{base}/items/{mug}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .expect(200);
    let again = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .json(json!({"discount_code": "CART-15"}))
        .send()
        .await;
    again.problem(409);
    assert_eq!(app.count("cart_items").await, 1);
    assert_eq!(times_used(&app).await, 1);
}
