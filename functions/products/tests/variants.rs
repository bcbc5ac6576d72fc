//! Variants through the products function: a product sells in versions with their own SKU,
//! options, price and stock; the product shows the lowest price and the summed stock.

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::TestApp;

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, products::router)
}

/// A T-shirt in two sizes: S at 12.00 (3 in stock), M at 10.00 (0 in stock).
async fn tee(app: &TestApp, admin: &str) -> (u64, Value) {
    let product = app
        .post("/products")
        .token(admin)
        .json(json!({"name": "Tee", "price": 12, "stock": 3, "sku": "tee-s"}))
        .send()
        .await
        .expect(201)
        .clone();
    let id = product["id"].as_u64().unwrap();
    // The default variant becomes size S.
    let default = product["variants"][0]["id"].as_u64().unwrap();
    app.put(&format!("/variants/{default}"))
        .token(admin)
        .json(json!({"options": {"size": "S"}}))
        .send()
        .await
        .expect(200);
    let medium = app
        .post(&format!("/products/{id}/variants"))
        .token(admin)
        .json(json!({"sku": "TEE-M", "options": {"size": "M"}, "price": 10, "stock": 0}))
        .send()
        .await;
    assert_eq!(
        medium.header("location"),
        Some(format!("/variants/{}", medium.expect(201)["id"]).as_str())
    );
    (id, medium.expect(201).clone())
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_product_sells_through_its_variants(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let created = app
        .post("/products")
        .token(&admin.token)
        .json(json!({"name": "Mug", "price": 4.5, "stock": 7}))
        .send()
        .await
        .expect(201)
        .clone();
    let mug = created["id"].as_u64().unwrap();
    let variants = created["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 1, "one default variant");
    assert_eq!(variants[0]["sku"], format!("P{mug}"), "a generated SKU");
    assert_eq!(variants[0]["options"], json!({}));
    assert_eq!(variants[0]["price"], json!(4.5));
    assert_eq!(variants[0]["stock"], 7);

    let (tee, medium) = tee(&app, &admin.token).await;
    assert_eq!(medium["sku"], "TEE-M", "kept as given");
    let product = app
        .get(&format!("/products/{tee}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(product["price"], json!(10.0), "the lowest variant price");
    assert_eq!(product["stock"], 3, "the sum of the variants' stock");
    let skus: Vec<&str> = product["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["tee-s", "TEE-M"], "oldest first");

    let page = app
        .get(&format!("/products/{tee}/variants?limit=1"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(page["items"][0]["sku"], "tee-s");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .get(&format!("/products/{tee}/variants?limit=1&cursor={cursor}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(rest["items"][0]["sku"], "TEE-M");
    assert_eq!(rest["next_cursor"], Value::Null);
    let one = app
        .get(&format!("/variants/{}", medium["id"]))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(one, medium);
    app.get("/products/999999/variants")
        .send()
        .await
        .problem(404);
    app.get("/variants/999999").send().await.problem(404);

    // A price change moves the product's price with it.
    app.put(&format!("/variants/{}", medium["id"]))
        .token(&admin.token)
        .json(json!({"price": 15}))
        .send()
        .await
        .expect(200);
    let product = app
        .get(&format!("/products/{tee}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(product["price"], json!(12.0));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn skus_and_options_are_unique_and_checked(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let (tee, _) = tee(&app, &admin.token).await;
    let add = |body: Value| {
        app.post(&format!("/products/{tee}/variants"))
            .token(&admin.token)
            .json(body)
            .send()
    };
    let taken =
        add(json!({"sku": "tee-M", "options": {"size": "L"}, "price": 10, "stock": 1})).await;
    assert_eq!(taken.problem(409)["type"], "/problems/duplicate-sku");
    let same =
        add(json!({"sku": "TEE-M2", "options": {"size": "M"}, "price": 10, "stock": 1})).await;
    assert_eq!(same.problem(409)["type"], "/problems/duplicate-options");
    // `{}` once per product, like any other options.
    add(json!({"sku": "TEE-X", "options": {}, "price": 10, "stock": 1}))
        .await
        .expect(201);
    let bare = add(json!({"sku": "TEE-X2", "options": {}, "price": 10, "stock": 1})).await;
    assert_eq!(bare.problem(409)["type"], "/problems/duplicate-options");
    add(json!({"sku": "bad sku", "options": {}, "price": 10, "stock": 1}))
        .await
        .invalid_field("sku");
    add(json!({"sku": "TEE-Y", "options": {"a": "1", "b": "2", "c": "3", "d": "4"}, "price": 10, "stock": 1}))
        .await
        .invalid_field("options");
    add(json!({"sku": "TEE-Y", "options": {"size": ""}, "price": 10, "stock": 1}))
        .await
        .invalid_field("options");
    add(json!({"sku": "TEE-Y", "options": {"size": "L"}, "price": 10.001, "stock": 1}))
        .await
        .invalid_field("price");
    let customer = app.customer().await;
    app.post(&format!("/products/{tee}/variants"))
        .token(&customer.token)
        .json(json!({"sku": "TEE-Z", "options": {"size": "L"}, "price": 10, "stock": 1}))
        .send()
        .await
        .problem(403);
    app.post("/products")
        .token(&admin.token)
        .json(json!({"name": "Other", "price": 1, "stock": 1, "sku": "TEE-S"}))
        .send()
        .await
        .problem(409);
    let variants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM variants")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(variants, 3, "nothing refused was kept");
    let products: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(products, 1, "the product whose SKU was taken was not kept");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn price_and_stock_on_the_product_need_a_single_variant(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 10).await;
    let updated = app
        .put(&format!("/products/{mug}"))
        .token(&admin.token)
        .json(json!({"price": 5, "stock": 2}))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (updated["price"].clone(), updated["stock"].clone()),
        (json!(5.0), json!(2))
    );
    assert_eq!(updated["variants"][0]["price"], json!(5.0));
    assert_eq!(updated["variants"][0]["stock"], 2);

    let (tee, _) = tee(&app, &admin.token).await;
    let refused = app
        .put(&format!("/products/{tee}"))
        .token(&admin.token)
        .json(json!({"price": 5, "stock": 2, "name": "Renamed"}))
        .send()
        .await
        .problem(400)
        .clone();
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["price", "stock"]);
    let kept = app
        .get(&format!("/products/{tee}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(
        kept["name"], "Tee",
        "nothing of the refused update was kept"
    );
    app.put(&format!("/products/{tee}"))
        .token(&admin.token)
        .json(json!({"name": "Tee shirt"}))
        .send()
        .await
        .expect(200);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn deleting_a_variant_keeps_the_last_one_and_what_was_bought(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let (tee, medium) = tee(&app, &admin.token).await;
    let medium = medium["id"].as_u64().unwrap();
    let ada = app.customer().await;
    sqlx::query(
        "INSERT INTO cart_items (user_id, product_id, variant_id, quantity) VALUES (?, ?, ?, 1)",
    )
    .bind(ada.id)
    .bind(tee)
    .bind(medium)
    .execute(app.pool())
    .await
    .unwrap();
    let order = sqlx::query(
        "INSERT INTO orders (user_id, status, total, expires_at) VALUES (?, 'paid', 10, UTC_TIMESTAMP(6))",
    )
    .bind(ada.id)
    .execute(app.pool())
    .await
    .unwrap()
    .last_insert_id();
    sqlx::query(
        "INSERT INTO order_items (order_id, product_id, variant_id, product_name, sku, options,
                                  unit_price, quantity, line_total)
         VALUES (?, ?, ?, 'Tee', 'TEE-M', '{\"size\":\"M\"}', 10, 1, 10)",
    )
    .bind(order)
    .bind(tee)
    .bind(medium)
    .execute(app.pool())
    .await
    .unwrap();

    app.delete(&format!("/variants/{medium}"))
        .token(&ada.token)
        .send()
        .await
        .problem(403);
    app.delete(&format!("/variants/{medium}"))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    assert_eq!(app.count("cart_items").await, 0, "out of every cart");
    let line: (Option<u64>, Option<u64>, String, String) = sqlx::query_as(
        "SELECT product_id, variant_id, CAST(sku AS CHAR), options FROM order_items",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(
        line,
        (Some(tee), None, "TEE-M".into(), "{\"size\":\"M\"}".into()),
        "the line keeps what was bought"
    );
    let product = app
        .get(&format!("/products/{tee}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(
        product["price"],
        json!(12.0),
        "the price follows the variants left"
    );

    let last = product["variants"][0]["id"].as_u64().unwrap();
    let refused = app
        .delete(&format!("/variants/{last}"))
        .token(&admin.token)
        .send()
        .await;
    assert_eq!(refused.problem(409)["type"], "/problems/last-variant");
    app.get(&format!("/variants/{last}"))
        .send()
        .await
        .expect(200);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn filters_match_a_product_when_one_variant_satisfies_them_all(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    // Tee: S at 12.00 with 3 in stock, M at 10.00 with none.
    let (tee, _) = tee(&app, &admin.token).await;
    let cup = app.product("Cup", "11", 1).await;
    let ids = |body: &Value| -> Vec<u64> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect()
    };
    let list = async |query: &str| {
        app.get(&format!("/products?{query}"))
            .send()
            .await
            .expect(200)
            .clone()
    };
    // A variant at 10.00 exists, but not one in stock: the tee is not in stock at 10.
    assert_eq!(
        ids(&list("max_price=10.5&in_stock=true").await),
        Vec::<u64>::new()
    );
    assert_eq!(ids(&list("max_price=10.5").await), vec![tee]);
    assert_eq!(ids(&list("min_price=11.5&in_stock=true").await), vec![tee]);
    assert_eq!(ids(&list("min_price=10.5&max_price=11.5").await), vec![cup]);
    // Sorted by the lowest price: the tee (10.00) before the cup (11.00).
    assert_eq!(ids(&list("sort=price").await), vec![tee, cup]);
    assert_eq!(ids(&list("sort=-price").await), vec![cup, tee]);
}
