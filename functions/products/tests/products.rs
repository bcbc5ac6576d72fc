use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, invoke_lambda, lambda_body, rest_api_event};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, products::router)
}

async fn category(app: &TestApp, name: &str) -> u64 {
    sqlx::query("INSERT INTO categories (name) VALUES (?)")
        .bind(name)
        .execute(app.pool())
        .await
        .unwrap()
        .last_insert_id()
}

async fn product(app: &TestApp, admin: &str, body: Value) -> Value {
    app.post("/products")
        .token(admin)
        .json(body)
        .send()
        .await
        .expect(201)
        .clone()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn admin_creates_reads_updates_and_deletes_a_product(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let books = category(&app, "Books").await;

    let created = app
        .post("/products")
        .token(&admin.token)
        .json(
            json!({"name": "Rust in Action", "description": "A book", "price": 39.90,
                     "stock": 5, "category_id": books}),
        )
        .send()
        .await;
    let body = created.expect(201).clone();
    let id = body["id"].as_u64().unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("/products/{id}").as_str())
    );
    assert_eq!(body["name"], "Rust in Action");
    assert_eq!(body["price"], json!(39.9));
    assert!(
        String::from_utf8_lossy(&created.raw).contains("\"price\":39.90"),
        "money is written with two decimals"
    );
    assert_eq!(body["stock"], 5);
    assert_eq!(body["category_id"], books);
    assert_eq!(body["average_rating"], Value::Null);
    assert_eq!(body["review_count"], 0);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    let fetched = app.get(&format!("/products/{id}")).send().await;
    assert_eq!(fetched.expect(200), &body);

    let updated = app
        .put(&format!("/products/{id}"))
        .token(&admin.token)
        .json(json!({"price": 35, "category_id": null}))
        .send()
        .await;
    let updated = updated.expect(200);
    assert_eq!(updated["price"], json!(35.0));
    assert_eq!(updated["category_id"], Value::Null);
    assert_eq!(
        updated["name"], "Rust in Action",
        "absent fields are untouched"
    );

    let (price, category): (rust_decimal::Decimal, Option<u64>) =
        sqlx::query_as("SELECT price, category_id FROM products WHERE id = ?")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(price.to_string(), "35.00");
    assert_eq!(category, None);

    let deleted = app
        .delete(&format!("/products/{id}"))
        .token(&admin.token)
        .send()
        .await;
    deleted.expect(204);
    assert!(deleted.raw.is_empty());
    app.get(&format!("/products/{id}"))
        .send()
        .await
        .problem(404);
    app.delete(&format!("/products/{id}"))
        .token(&admin.token)
        .send()
        .await
        .problem(404);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn writes_need_an_admin_token(pool: MySqlPool) {
    let app = app(pool);
    let customer = app.customer().await;
    let body = json!({"name": "X", "price": 1, "stock": 1});

    let anonymous = app.post("/products").json(body.clone()).send().await;
    anonymous.problem(401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    app.post("/products")
        .token("not-a-jwt")
        .json(body.clone())
        .send()
        .await
        .problem(401);
    app.post("/products")
        .token(&customer.token)
        .json(body.clone())
        .send()
        .await
        .problem(403);
    app.put("/products/1")
        .token(&customer.token)
        .json(body.clone())
        .send()
        .await
        .problem(403);
    app.delete("/products/1")
        .token(&customer.token)
        .send()
        .await
        .problem(403);

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "rejected writes change nothing");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn invalid_products_are_refused_with_the_field_named(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let cases = [
        (json!({"price": 1, "stock": 1}), "name"),
        (json!({"name": "", "price": 1, "stock": 1}), "name"),
        (json!({"name": "   ", "price": 1, "stock": 1}), "name"),
        (
            json!({"name": "x".repeat(201), "price": 1, "stock": 1}),
            "name",
        ),
        (
            json!({"name": "X", "description": "d".repeat(5001), "price": 1, "stock": 1}),
            "description",
        ),
        (json!({"name": "X", "price": 1.999, "stock": 1}), "price"),
        (json!({"name": "X", "price": 0, "stock": 1}), "price"),
        (json!({"name": "X", "price": -5, "stock": 1}), "price"),
        (
            json!({"name": "X", "price": 100000000, "stock": 1}),
            "price",
        ),
        (json!({"name": "X", "price": "12.50", "stock": 1}), "price"),
        (json!({"name": "X", "price": "NaN", "stock": 1}), "price"),
        (json!({"name": "X", "price": 1, "stock": -1}), "stock"),
        (json!({"name": "X", "price": 1, "stock": 1.5}), "stock"),
        (
            json!({"name": "X", "price": 1, "stock": 1_000_000_001u64}),
            "stock",
        ),
        (
            json!({"name": "X", "price": 1, "stock": 1, "category_id": 999}),
            "category_id",
        ),
        (
            json!({"name": "X", "price": 1, "stock": 1, "colour": "red"}),
            "colour",
        ),
        (json!({"name": 5, "price": 1, "stock": 1}), "name"),
    ];
    for (body, field) in cases {
        let response = app
            .post("/products")
            .token(&admin.token)
            .json(body.clone())
            .send()
            .await;
        assert_eq!(response.status, 400, "{body} should be refused");
        response.invalid_field(field);
    }

    // Not JSON at all, not an object, not declared as JSON, too large.
    app.post("/products")
        .token(&admin.token)
        .raw("application/json", "{\"name\":")
        .send()
        .await
        .problem(400);
    app.post("/products")
        .token(&admin.token)
        .raw("application/json", "[1,2]")
        .send()
        .await
        .problem(400);
    app.post("/products")
        .token(&admin.token)
        .raw("application/json", vec![b'{', 0xff, b'}'])
        .send()
        .await
        .problem(400);
    app.post("/products")
        .token(&admin.token)
        .raw("text/plain", "{}")
        .send()
        .await
        .problem(415);
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(1024 * 1024));
    app.post("/products")
        .token(&admin.token)
        .raw("application/json", huge)
        .send()
        .await
        .problem(413);

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn updates_need_at_least_one_valid_field_and_an_existing_product(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let p = product(
        &app,
        &admin.token,
        json!({"name": "Lamp", "price": 20, "stock": 3}),
    )
    .await;
    let uri = format!("/products/{}", p["id"]);

    app.put(&uri)
        .token(&admin.token)
        .json(json!({}))
        .send()
        .await
        .problem(400);
    app.put(&uri)
        .token(&admin.token)
        .json(json!({"price": 0.001}))
        .send()
        .await
        .invalid_field("price");
    app.put(&uri)
        .token(&admin.token)
        .json(json!({"category_id": 12345}))
        .send()
        .await
        .invalid_field("category_id");
    app.put("/products/999999")
        .token(&admin.token)
        .json(json!({"stock": 1}))
        .send()
        .await
        .problem(404);
    app.get("/products/abc").send().await.problem(400);
    app.get("/products/0").send().await.problem(400);
    app.get("/products/-3").send().await.problem(400);
    app.get("/products/99999999999999999999999")
        .send()
        .await
        .problem(400);

    let after = app.get(&uri).send().await;
    assert_eq!(after.expect(200), &p, "failed updates change nothing");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn unknown_routes_and_methods_are_problems(pool: MySqlPool) {
    let app = app(pool);
    app.get("/nope").send().await.problem(404);
    let response = app
        .request(axum::http::Method::PATCH, "/products")
        .send()
        .await;
    response.problem(405);
    let allow = response.header("allow").unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn listing_filters_and_sorts(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let books = category(&app, "Books").await;
    let toys = category(&app, "Toys").await;
    let specs = [
        ("Red Ball", "a bouncy toy", 5.50, 10, Some(toys)),
        ("Blue Ball", "a soft TOY", 7.25, 0, Some(toys)),
        ("Cook Book", "recipes 50% off", 19.99, 3, Some(books)),
        ("Atlas", "maps", 45.00, 1, None),
    ];
    for (name, description, price, stock, category_id) in specs {
        product(
            &app,
            &admin.token,
            json!({"name": name, "description": description,
            "price": price, "stock": stock, "category_id": category_id}),
        )
        .await;
    }
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |q: &str| {
        let uri = format!("/products{q}");
        let app = &app;
        async move { app.get(&uri).send().await }
    };

    assert_eq!(
        names(list("").await.expect(200)),
        ["Atlas", "Cook Book", "Blue Ball", "Red Ball"],
        "newest first"
    );
    assert_eq!(
        names(list("?sort=created_at").await.expect(200)),
        ["Red Ball", "Blue Ball", "Cook Book", "Atlas"]
    );
    assert_eq!(
        names(list("?sort=price").await.expect(200)),
        ["Red Ball", "Blue Ball", "Cook Book", "Atlas"]
    );
    assert_eq!(
        names(list("?sort=-price").await.expect(200)),
        ["Atlas", "Cook Book", "Blue Ball", "Red Ball"]
    );
    assert_eq!(
        names(list("?sort=name").await.expect(200)),
        ["Atlas", "Blue Ball", "Cook Book", "Red Ball"]
    );
    assert_eq!(
        names(list("?sort=-name").await.expect(200)),
        ["Red Ball", "Cook Book", "Blue Ball", "Atlas"]
    );
    assert_eq!(
        names(
            list(&format!("?category_id={toys}&sort=name"))
                .await
                .expect(200)
        ),
        ["Blue Ball", "Red Ball"]
    );
    assert!(
        names(list("?category_id=4242").await.expect(200)).is_empty(),
        "unknown category: empty list"
    );
    assert_eq!(
        names(
            list("?min_price=7.25&max_price=19.99&sort=price")
                .await
                .expect(200)
        ),
        ["Blue Ball", "Cook Book"],
        "bounds are inclusive"
    );
    assert_eq!(
        names(list("?in_stock=true&sort=name").await.expect(200)),
        ["Atlas", "Cook Book", "Red Ball"]
    );
    assert_eq!(
        names(list("?q=toy%20BALL&sort=name").await.expect(200)),
        ["Blue Ball", "Red Ball"],
        "every word, any case"
    );
    assert_eq!(
        names(list("?q=50%25").await.expect(200)),
        ["Cook Book"],
        "LIKE wildcards are literal"
    );
    assert!(names(list("?q=_").await.expect(200)).is_empty());
    assert_eq!(
        names(list("?unknown=1&sort=name&limit=1").await.expect(200)),
        ["Atlas"],
        "unknown parameters are ignored"
    );

    list("?limit=0").await.invalid_field("limit");
    list("?limit=101").await.invalid_field("limit");
    list("?limit=ten").await.invalid_field("limit");
    list("?sort=colour").await.invalid_field("sort");
    list("?min_price=-1").await.invalid_field("min_price");
    list("?min_price=abc").await.invalid_field("min_price");
    list("?min_price=10&max_price=5")
        .await
        .invalid_field("min_price");
    list("?category_id=x").await.invalid_field("category_id");
    list("?in_stock=maybe").await.invalid_field("in_stock");
    list("?limit=5&limit=6").await.invalid_field("limit");
    list("?cursor=garbage").await.invalid_field("cursor");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn keyset_walk_yields_every_product_exactly_once_in_every_sort(pool: MySqlPool) {
    let app = app(pool);
    // Many equal prices, names and timestamps: ties must be broken by id.
    sqlx::query(
        "INSERT INTO products (name, price, created_at)
         SELECT CONCAT('P', seq % 7), 1 + (seq % 5), '2026-01-01 00:00:00'
         FROM seq_1_to_53",
    )
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO variants (product_id, sku, price, stock)
         SELECT id, CONCAT('P', id), price, id FROM products",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(total, 53);

    for sort in [
        "-created_at",
        "created_at",
        "price",
        "-price",
        "name",
        "-name",
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let uri = match &cursor {
                Some(c) => format!("/products?sort={sort}&limit=10&cursor={c}"),
                None => format!("/products?sort={sort}&limit=10"),
            };
            let page = app.get(&uri).send().await.expect(200).clone();
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_u64().unwrap()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(seen.len(), 53, "{sort}: every item once");
        assert_eq!(unique.len(), 53, "{sort}: no repeats");

        // A cursor made for one sort is refused by another.
        let first = app
            .get(&format!("/products?sort={sort}&limit=10"))
            .send()
            .await
            .expect(200)
            .clone();
        let other = if sort == "price" { "name" } else { "price" };
        let c = first["next_cursor"].as_str().unwrap();
        app.get(&format!("/products?sort={other}&cursor={c}"))
            .send()
            .await
            .invalid_field("cursor");
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn text_is_stored_and_returned_verbatim(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let name = "Robert'); DROP TABLE products;-- 🦀 Ünïcödé \"q\" \\ %_";
    let p = product(
        &app,
        &admin.token,
        json!({"name": name, "description": "<script>", "price": 1, "stock": 1}),
    )
    .await;
    assert_eq!(p["name"], name);
    let again = app.get(&format!("/products/{}", p["id"])).send().await;
    assert_eq!(again.expect(200)["name"], name);
    assert_eq!(again.body["description"], "<script>");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn deleting_a_category_uncategorises_its_products(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let toys = category(&app, "Toys").await;
    let p = product(
        &app,
        &admin.token,
        json!({"name": "Kite", "price": 9, "stock": 2, "category_id": toys}),
    )
    .await;
    sqlx::query("DELETE FROM categories WHERE id = ?")
        .bind(toys)
        .execute(app.pool())
        .await
        .unwrap();
    let after = app.get(&format!("/products/{}", p["id"])).send().await;
    assert_eq!(after.expect(200)["category_id"], Value::Null);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn http_api_v2_events_go_through_lambda(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let auth = json!({"authorization": format!("Bearer {}", admin.token)});

    let created = invoke_lambda(
        app.router.clone(),
        http_api_event(
            "POST",
            "/products",
            "",
            auth.clone(),
            Some(r#"{"name":"Mug","price":8.5,"stock":4}"#),
        ),
    )
    .await;
    assert_eq!(created["statusCode"], 201);
    let body = lambda_body(&created);
    assert_eq!(body["name"], "Mug");
    assert_eq!(
        created["headers"]["location"],
        format!("/products/{}", body["id"])
    );

    let listed = invoke_lambda(
        app.router.clone(),
        http_api_event("GET", "/products", "limit=1&sort=name", json!({}), None),
    )
    .await;
    assert_eq!(listed["statusCode"], 200);
    assert_eq!(lambda_body(&listed)["items"][0]["name"], "Mug");

    let missing = invoke_lambda(
        app.router.clone(),
        http_api_event("GET", "/products/424242", "", json!({}), None),
    )
    .await;
    assert_eq!(missing["statusCode"], 404);
    assert_eq!(
        missing["headers"]["content-type"],
        "application/problem+json"
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn rest_api_v1_events_with_a_stage_go_through_lambda(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let p = product(
        &app,
        &admin.token,
        json!({"name": "Pen", "price": 1.2, "stock": 9}),
    )
    .await;

    let fetched = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "GET",
            &format!("/products/{}", p["id"]),
            json!({}),
            json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(fetched["statusCode"], 200, "{fetched}");
    assert_eq!(lambda_body(&fetched)["name"], "Pen");

    let listed = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "GET",
            "/products",
            json!({"sort": "price", "limit": "5"}),
            json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(listed["statusCode"], 200);
    assert_eq!(lambda_body(&listed)["items"][0]["name"], "Pen");

    let denied = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "DELETE",
            &format!("/products/{}", p["id"]),
            json!({}),
            json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(denied["statusCode"], 401);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn ratings_show_on_single_products_and_in_lists(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let p = product(
        &app,
        &admin.token,
        json!({"name": "Mug", "price": 4, "stock": 1}),
    )
    .await;
    assert_eq!(p["average_rating"], Value::Null);
    sqlx::query("UPDATE products SET review_count = 3, rating_sum = 13 WHERE id = ?")
        .bind(p["id"].as_u64())
        .execute(app.pool())
        .await
        .unwrap();
    let one = app.get(&format!("/products/{}", p["id"])).send().await;
    assert_eq!(one.expect(200)["average_rating"], json!(4.33));
    assert_eq!(one.body["review_count"], 3);
    let list = app.get("/products").send().await;
    assert_eq!(list.expect(200)["items"][0]["average_rating"], json!(4.33));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_api_describes_itself_and_whole_floats_are_stock(pool: MySqlPool) {
    let app = app(pool);
    let spec = app.get("/openapi.json").send().await;
    assert_eq!(spec.header("content-type"), Some("application/json"));
    assert_eq!(spec.expect(200)["openapi"], "3.1.0");
    assert!(spec.body["paths"]["/products/{product_id}"]["put"].is_object());

    let admin = app.admin().await;
    let p = product(
        &app,
        &admin.token,
        json!({"name": "Mug", "price": 4, "stock": 3.0, "category_id": null}),
    )
    .await;
    assert_eq!(p["stock"], 3);
}
