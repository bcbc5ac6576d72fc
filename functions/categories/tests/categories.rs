use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, invoke_lambda, lambda_body, rest_api_event};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, categories::router)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn admin_manages_categories(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;

    let created = app
        .post("/categories")
        .token(&admin.token)
        .json(json!({"name": "Books", "description": "Paper"}))
        .send()
        .await;
    let body = created.expect(201).clone();
    let id = body["id"].as_u64().unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("/categories/{id}").as_str())
    );
    assert_eq!(body["name"], "Books");
    assert_eq!(body["description"], "Paper");
    assert_eq!(body["product_count"], 0);

    sqlx::query("INSERT INTO products (name, price, category_id) VALUES ('A', 1, ?), ('B', 2, ?)")
        .bind(id)
        .bind(id)
        .execute(app.pool())
        .await
        .unwrap();
    let fetched = app.get(&format!("/categories/{id}")).send().await;
    assert_eq!(fetched.expect(200)["product_count"], 2);

    let updated = app
        .put(&format!("/categories/{id}"))
        .token(&admin.token)
        .json(json!({"description": null}))
        .send()
        .await;
    assert_eq!(updated.expect(200)["description"], Value::Null);
    assert_eq!(updated.body["name"], "Books");

    app.delete(&format!("/categories/{id}"))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    app.get(&format!("/categories/{id}"))
        .send()
        .await
        .problem(404);
    let orphans: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE category_id IS NULL")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(orphans, 2, "products survive their category, uncategorised");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn duplicate_names_conflict_in_any_case(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    app.post("/categories")
        .token(&admin.token)
        .json(json!({"name": "Toys"}))
        .send()
        .await
        .expect(201);
    let other = app
        .post("/categories")
        .token(&admin.token)
        .json(json!({"name": "Games"}))
        .send()
        .await
        .expect(201)
        .clone();

    app.post("/categories")
        .token(&admin.token)
        .json(json!({"name": "toys"}))
        .send()
        .await
        .problem(409);
    app.put(&format!("/categories/{}", other["id"]))
        .token(&admin.token)
        .json(json!({"name": "TOYS"}))
        .send()
        .await
        .problem(409);

    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM categories ORDER BY id")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(names, ["Toys", "Games"]);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn writes_are_for_admins_and_inputs_are_checked(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let customer = app.customer().await;

    app.post("/categories")
        .json(json!({"name": "A"}))
        .send()
        .await
        .problem(401);
    app.post("/categories")
        .token(&customer.token)
        .json(json!({"name": "A"}))
        .send()
        .await
        .problem(403);
    app.put("/categories/1")
        .token(&customer.token)
        .json(json!({"name": "A"}))
        .send()
        .await
        .problem(403);
    app.delete("/categories/1")
        .token(&customer.token)
        .send()
        .await
        .problem(403);

    app.post("/categories")
        .token(&admin.token)
        .json(json!({}))
        .send()
        .await
        .invalid_field("name");
    app.post("/categories")
        .token(&admin.token)
        .json(json!({"name": ""}))
        .send()
        .await
        .invalid_field("name");
    app.post("/categories")
        .token(&admin.token)
        .json(json!({"name": "x".repeat(101)}))
        .send()
        .await
        .invalid_field("name");
    app.post("/categories")
        .token(&admin.token)
        .json(json!({"name": "A", "extra": 1}))
        .send()
        .await
        .invalid_field("extra");
    app.put("/categories/1")
        .token(&admin.token)
        .json(json!({}))
        .send()
        .await
        .problem(400);
    app.put("/categories/777")
        .token(&admin.token)
        .json(json!({"name": "Z"}))
        .send()
        .await
        .problem(404);
    app.delete("/categories/777")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    app.get("/categories/nope")
        .send()
        .await
        .invalid_field("category_id");

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM categories")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn listing_pages_by_name(pool: MySqlPool) {
    let app = app(pool);
    for name in ["d", "B", "a", "C", "e"] {
        sqlx::query("INSERT INTO categories (name) VALUES (?)")
            .bind(name)
            .execute(app.pool())
            .await
            .unwrap();
    }
    let first = app
        .get("/categories?limit=2")
        .send()
        .await
        .expect(200)
        .clone();
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), ["a", "B"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/categories?limit=2&cursor={cursor}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(names(&second), ["C", "d"]);
    let cursor = second["next_cursor"].as_str().unwrap();
    let last = app
        .get(&format!("/categories?limit=2&cursor={cursor}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(names(&last), ["e"]);
    assert_eq!(last["next_cursor"], Value::Null);
    app.get("/categories?cursor=%%%").send().await.problem(400);
    app.get("/categories?limit=1000")
        .send()
        .await
        .invalid_field("limit");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn lambda_events_of_both_api_kinds(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let created = invoke_lambda(
        app.router.clone(),
        http_api_event(
            "POST",
            "/categories",
            "",
            json!({"authorization": format!("Bearer {}", admin.token)}),
            Some(r#"{"name":"Garden"}"#),
        ),
    )
    .await;
    assert_eq!(created["statusCode"], 201);
    let id = lambda_body(&created)["id"].as_u64().unwrap();

    let fetched = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "GET",
            &format!("/categories/{id}"),
            json!({}),
            json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(fetched["statusCode"], 200);
    assert_eq!(lambda_body(&fetched)["name"], "Garden");

    let wrong_method = invoke_lambda(
        app.router.clone(),
        http_api_event("PATCH", "/categories", "", json!({}), None),
    )
    .await;
    assert_eq!(wrong_method["statusCode"], 405);
}
