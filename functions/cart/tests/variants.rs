//! Carts by variant: the variant route sets any variant's line; the product route keeps
//! working for one-variant products.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::TestApp;

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, cart::router)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_cart_holds_variants_and_checks_them_out(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let base = format!("/users/{}/cart", ada.id);
    let tee = app.product("Tee", "12", 5).await;
    let small: u64 = sqlx::query_scalar("SELECT id FROM variants WHERE product_id = ?")
        .bind(tee)
        .fetch_one(app.pool())
        .await
        .unwrap();
    let medium = app.variant(tee, "TEE-M", r#"{"size":"M"}"#, "10", 2).await;

    // The product route needs a product with one variant.
    let several = app
        .put(&format!("{base}/items/{tee}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await;
    assert_eq!(several.problem(409)["type"], "/problems/variant-required");
    app.put(&format!("{base}/variants/999999"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .problem(404);
    let over = app
        .put(&format!("{base}/variants/{medium}"))
        .token(&ada.token)
        .json(json!({"quantity": 3}))
        .send()
        .await;
    assert_eq!(over.problem(409)["type"], "/problems/insufficient-stock");
    app.put(&format!("{base}/variants/{small}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .expect(200);
    let cart = app
        .put(&format!("{base}/variants/{medium}"))
        .token(&ada.token)
        .json(json!({"quantity": 2}))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(
        cart["items"][1],
        json!({"product_id": tee, "variant_id": medium, "name": "Tee", "sku": "TEE-M",
               "options": {"size": "M"}, "unit_price": 10.0, "quantity": 2, "line_total": 20.0})
    );
    assert_eq!(cart["total"], json!(32.0));

    app.delete(&format!("{base}/variants/{small}"))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    app.delete(&format!("{base}/variants/{small}"))
        .token(&ada.token)
        .send()
        .await
        .problem(404);
    let order = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .send()
        .await
        .expect(201)
        .clone();
    assert_eq!(order["items"][0]["variant_id"], medium);
    assert_eq!(order["items"][0]["sku"], "TEE-M");
    assert_eq!(app.variant_stock(medium).await, 0);
    assert_eq!(app.variant_stock(small).await, 5);
    assert_eq!(app.count("cart_items").await, 0);
}
