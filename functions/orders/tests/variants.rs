//! Orders by variant: a line names a variant, or a product that has exactly one; lines keep
//! the variant's SKU and options as bought.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::TestApp;

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, orders::router)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn lines_name_a_variant_or_a_product_with_exactly_one(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;
    let tee = app.product("Tee", "12", 5).await;
    let medium = app.variant(tee, "TEE-M", r#"{"size":"M"}"#, "10", 5).await;
    let post = |items: serde_json::Value| {
        app.post("/orders")
            .token(&ada.token)
            .json(json!({"items": items}))
            .send()
    };

    // A product with several variants: the line must choose one.
    let refused =
        post(json!([{"product_id": mug, "quantity": 1}, {"product_id": tee, "quantity": 1}])).await;
    let problem = refused.problem(400);
    assert_eq!(problem["errors"][0]["field"], "items[1]");
    // Both, or neither: 400 naming the line.
    post(json!([{"product_id": tee, "variant_id": medium, "quantity": 1}]))
        .await
        .invalid_field("items[0]");
    post(json!([{"quantity": 1}]))
        .await
        .invalid_field("items[0].product_id");
    post(json!([{"variant_id": 999999, "quantity": 1}]))
        .await
        .invalid_field("items");
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.stock(tee).await, 10);

    let placed =
        post(json!([{"variant_id": medium, "quantity": 2}, {"product_id": mug, "quantity": 1}]))
            .await
            .expect(201)
            .clone();
    let medium_line = placed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["variant_id"] == medium)
        .unwrap()
        .clone();
    assert_eq!(
        medium_line,
        json!({"product_id": tee, "variant_id": medium, "name": "Tee", "sku": "TEE-M",
               "options": {"size": "M"}, "unit_price": 10.0, "quantity": 2, "line_total": 20.0})
    );
    assert_eq!(placed["total"], json!(24.0));
    assert_eq!(app.variant_stock(medium).await, 3);
    assert_eq!(app.stock(tee).await, 8, "only the medium was taken");
    assert_eq!(app.stock(mug).await, 9);

    // Short stock names the variant; nothing is taken.
    let short = post(json!([{"variant_id": medium, "quantity": 4}])).await;
    let problem = short.problem(409);
    assert_eq!(problem["type"], "/problems/insufficient-stock");
    assert_eq!(
        problem["errors"][0]["message"],
        format!("variant {medium} has 3 in stock, 4 requested")
    );
    assert_eq!(app.variant_stock(medium).await, 3);

    // Cancelling returns the stock to the variant it came from.
    let id = placed["id"].as_u64().unwrap();
    app.put(&format!("/orders/{id}"))
        .token(&ada.token)
        .json(json!({"status": "cancelled"}))
        .send()
        .await
        .expect(200);
    assert_eq!(app.variant_stock(medium).await, 5);
    assert_eq!(app.stock(tee).await, 10);
}
