use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, TestUser, http_api_event, invoke_lambda, lambda_body, rest_api_event};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, reviews::router)
}

async fn product(app: &TestApp) -> u64 {
    testkit::insert_product(app.pool(), "Mug", "4", 10).await
}

async fn aggregates(app: &TestApp, product_id: u64) -> (u32, u32) {
    sqlx::query_as("SELECT review_count, rating_sum FROM products WHERE id = ?")
        .bind(product_id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn review(app: &TestApp, user: &TestUser, product_id: u64, rating: u8) -> Value {
    app.post(&format!("/products/{product_id}/reviews"))
        .token(&user.token)
        .json(json!({"rating": rating, "comment": "fine"}))
        .send()
        .await
        .expect(201)
        .clone()
}

/// An order of `user` containing `product_id`, in `status`.
async fn bought(app: &TestApp, user: &TestUser, product_id: u64, status: &str) {
    let order = sqlx::query("INSERT INTO orders (user_id, status, total, expires_at) VALUES (?, ?, 4, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)")
        .bind(user.id)
        .bind(status)
        .execute(app.pool())
        .await
        .unwrap()
        .last_insert_id();
    sqlx::query("INSERT INTO order_items (order_id, product_id, product_name, unit_price, quantity, line_total) VALUES (?, ?, 'Mug', 4, 1, 4)")
        .bind(order)
        .bind(product_id)
        .execute(app.pool())
        .await
        .unwrap();
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_review_names_its_author_and_counts_once(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = product(&app).await;
    let response = app
        .post(&format!("/products/{mug}/reviews"))
        .token(&ada.token)
        .json(json!({"rating": 4, "comment": "Sturdy 🍵 <b>mug</b>'; --"}))
        .send()
        .await;
    let body = response.expect(201).clone();
    assert_eq!(
        response.header("location"),
        Some(format!("/reviews/{}", body["id"]).as_str())
    );
    assert_eq!(body["product_id"], mug);
    assert_eq!(body["user_id"], ada.id);
    assert!(body["user_name"].as_str().unwrap().starts_with("User "));
    assert_eq!(body["rating"], 4);
    assert_eq!(body["comment"], "Sturdy 🍵 <b>mug</b>'; --");
    assert_eq!(body["verified_purchase"], false);
    assert_eq!(aggregates(&app, mug).await, (1, 4));

    let dup = app
        .post(&format!("/products/{mug}/reviews"))
        .token(&ada.token)
        .json(json!({"rating": 5}))
        .send()
        .await;
    assert_eq!(dup.problem(409)["type"], "/problems/duplicate-review");
    assert_eq!(aggregates(&app, mug).await, (1, 4));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn verified_purchase_needs_a_paid_or_later_order(pool: MySqlPool) {
    let app = app(pool);
    let mug = product(&app).await;
    let pending_buyer = app.customer().await;
    bought(&app, &pending_buyer, mug, "pending").await;
    assert_eq!(
        review(&app, &pending_buyer, mug, 3).await["verified_purchase"],
        false
    );
    for status in ["paid", "processing", "shipped", "delivered"] {
        let buyer = app.customer().await;
        bought(&app, &buyer, mug, status).await;
        assert_eq!(
            review(&app, &buyer, mug, 5).await["verified_purchase"],
            true,
            "{status}"
        );
    }
    let cancelled = app.customer().await;
    bought(&app, &cancelled, mug, "cancelled").await;
    assert_eq!(
        review(&app, &cancelled, mug, 1).await["verified_purchase"],
        false
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn review_input_and_permissions(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let admin = app.admin().await;
    let mug = product(&app).await;
    let uri = format!("/products/{mug}/reviews");
    for (body, field) in [
        (json!({"rating": 0}), "rating"),
        (json!({"rating": 6}), "rating"),
        (json!({"rating": 4.5}), "rating"),
        (json!({"rating": -1}), "rating"),
        (json!({"rating": "5"}), "rating"),
        (json!({}), "rating"),
        (json!({"rating": 5, "comment": "c".repeat(2001)}), "comment"),
        (json!({"rating": 5, "title": "x"}), "title"),
    ] {
        app.post(&uri)
            .token(&ada.token)
            .json(body)
            .send()
            .await
            .invalid_field(field);
    }
    app.post(&uri)
        .json(json!({"rating": 5}))
        .send()
        .await
        .problem(401);
    app.post(&uri)
        .token(&ada.token)
        .json(json!({"rating": 5, "user_id": bob.id}))
        .send()
        .await
        .problem(403);
    app.post("/products/999999/reviews")
        .token(&ada.token)
        .json(json!({"rating": 5}))
        .send()
        .await
        .problem(404);
    assert_eq!(aggregates(&app, mug).await, (0, 0));

    // An admin may write on a customer's behalf.
    let on_behalf = app
        .post(&uri)
        .token(&admin.token)
        .json(json!({"rating": 2, "user_id": bob.id}))
        .send()
        .await;
    assert_eq!(on_behalf.expect(201)["user_id"], bob.id);
    app.post(&uri)
        .token(&admin.token)
        .json(json!({"rating": 2, "user_id": 999999}))
        .send()
        .await
        .invalid_field("user_id");

    let ada_review = review(&app, &ada, mug, 5).await;
    app.delete(&format!("/reviews/{}", ada_review["id"]))
        .token(&bob.token)
        .send()
        .await
        .problem(403);
    app.delete(&format!("/reviews/{}", ada_review["id"]))
        .send()
        .await
        .problem(401);
    app.delete("/reviews/999999")
        .token(&ada.token)
        .send()
        .await
        .problem(404);
    assert_eq!(aggregates(&app, mug).await, (2, 7));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn averages_follow_creates_and_deletes(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let mug = product(&app).await;
    let users = [
        app.customer().await,
        app.customer().await,
        app.customer().await,
    ];
    let mut ids = Vec::new();
    for (user, rating) in users.iter().zip([5, 4, 4]) {
        ids.push(
            review(&app, user, mug, rating).await["id"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(aggregates(&app, mug).await, (3, 13));
    app.delete(&format!("/reviews/{}", ids[0]))
        .token(&users[0].token)
        .send()
        .await
        .expect(204);
    assert_eq!(aggregates(&app, mug).await, (2, 8));
    app.delete(&format!("/reviews/{}", ids[1]))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    assert_eq!(aggregates(&app, mug).await, (1, 4));
    app.delete(&format!("/reviews/{}", ids[1]))
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    assert_eq!(aggregates(&app, mug).await, (1, 4));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn reviews_are_listed_newest_first_in_pages(pool: MySqlPool) {
    let app = app(pool);
    let mug = product(&app).await;
    let mut ids = Vec::new();
    for rating in [1, 2, 3, 4, 5] {
        let user = app.customer().await;
        ids.push(
            review(&app, &user, mug, rating).await["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let first = app
        .get(&format!("/products/{mug}/reviews?limit=2"))
        .send()
        .await
        .expect(200)
        .clone();
    let page_ids = |p: &Value| -> Vec<u64> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(page_ids(&first), [ids[4], ids[3]]);
    let c = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("/products/{mug}/reviews?limit=2&cursor={c}"))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(page_ids(&second), [ids[2], ids[1]]);
    app.get("/products/999999/reviews")
        .send()
        .await
        .problem(404);
    app.get(&format!("/products/{mug}/reviews?limit=0"))
        .send()
        .await
        .invalid_field("limit");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn reviews_through_lambda_events(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = product(&app).await;
    let auth = json!({"authorization": format!("Bearer {}", ada.token)});
    let created = invoke_lambda(
        app.router.clone(),
        http_api_event(
            "POST",
            &format!("/products/{mug}/reviews"),
            "",
            auth.clone(),
            Some(r#"{"rating":5}"#),
        ),
    )
    .await;
    assert_eq!(created["statusCode"], 201);
    let id = lambda_body(&created)["id"].as_u64().unwrap();
    let listed = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "GET",
            &format!("/products/{mug}/reviews"),
            json!({}),
            json!({}),
            None,
        ),
    )
    .await;
    assert_eq!(lambda_body(&listed)["items"][0]["id"], id);
    let deleted = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "DELETE",
            &format!("/reviews/{id}"),
            json!({}),
            auth,
            None,
        ),
    )
    .await;
    assert_eq!(deleted["statusCode"], 204);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_created_reviews_location_can_be_read(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = product(&app).await;
    let created = app
        .post(&format!("/products/{mug}/reviews"))
        .token(&ada.token)
        .json(json!({"rating": 4}))
        .send()
        .await;
    let body = created.expect(201).clone();
    let location = created.header("location").unwrap().to_string();
    let fetched = app.get(&location).send().await;
    assert_eq!(fetched.expect(200), &body);
    app.get("/reviews/999999").send().await.problem(404);
}
