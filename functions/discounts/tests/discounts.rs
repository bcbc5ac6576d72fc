use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, invoke_lambda, lambda_body};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, discounts::router)
}

async fn times_used(app: &TestApp, id: u64) -> u32 {
    sqlx::query_scalar("SELECT times_used FROM discounts WHERE id = ?")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_admin_creates_reads_changes_and_deletes_a_discount(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let response = app
        .post("/discounts")
        .token(&admin.token)
        .json(
            json!({"code": "summer-10", "kind": "percent", "value": 10, "min_subtotal": 20,
                     "ends_at": "2999-01-01T00:00:00Z", "usage_limit": 100,
                     "per_customer_limit": 1}),
        )
        .send()
        .await;
    let created = response.expect(201).clone();
    let id = created["id"].as_u64().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/discounts/{id}").as_str())
    );
    assert_eq!(created["code"], "SUMMER-10", "stored upper-case");
    assert_eq!(created["kind"], "percent");
    assert!(
        String::from_utf8_lossy(&response.raw).contains("\"value\":10,"),
        "a percentage is a whole number: {}",
        String::from_utf8_lossy(&response.raw)
    );
    assert!(String::from_utf8_lossy(&response.raw).contains("\"min_subtotal\":20.00"));
    assert_eq!(created["ends_at"], "2999-01-01T00:00:00Z");
    assert_eq!(created["usage_limit"], 100);
    assert_eq!(created["per_customer_limit"], 1);
    assert_eq!(created["times_used"], 0);
    assert_eq!(created["active"], true);
    assert!(created["starts_at"].is_string() && created["created_at"].is_string());

    let read = app
        .get(&format!("/discounts/{id}"))
        .token(&admin.token)
        .send()
        .await;
    assert_eq!(
        read.raw, response.raw,
        "the discount answered is the one stored"
    );

    let changed = app
        .put(&format!("/discounts/{id}"))
        .token(&admin.token)
        .json(json!({"kind": "amount", "value": 5.5, "min_subtotal": null, "active": false}))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(changed["kind"], "amount");
    assert_eq!(changed["value"], json!(5.5));
    assert_eq!(changed["min_subtotal"], Value::Null);
    assert_eq!(changed["active"], false);
    assert_eq!(changed["code"], "SUMMER-10");
    assert_eq!(changed["usage_limit"], 100, "fields not sent stay");

    app.delete(&format!("/discounts/{id}"))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    app.get(&format!("/discounts/{id}"))
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    assert_eq!(app.count("discounts").await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn codes_are_unique_case_insensitively(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    app.post("/discounts")
        .token(&admin.token)
        .json(json!({"code": "WELCOME", "kind": "amount", "value": 5}))
        .send()
        .await
        .expect(201);
    let dup = app
        .post("/discounts")
        .token(&admin.token)
        .json(json!({"code": "welcome", "kind": "percent", "value": 5}))
        .send()
        .await;
    let problem = dup.problem(409);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("duplicate-discount-code")
    );
    assert_eq!(problem["errors"][0]["field"], "code");
    assert_eq!(app.count("discounts").await, 1);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_bad_field_is_named_and_nothing_is_stored(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let base = json!({"code": "OK-CODE", "kind": "percent", "value": 10});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"code": "AB"}), "code"),
        (json!({"code": "with space"}), "code"),
        (json!({"code": "A".repeat(33)}), "code"),
        (json!({"code": "ÉTÉ-10"}), "code"),
        (json!({"kind": "free"}), "kind"),
        (json!({"value": 10.5}), "value"),
        (json!({"value": 101}), "value"),
        (json!({"value": 0}), "value"),
        (json!({"value": "10"}), "value"),
        (json!({"kind": "amount", "value": 5.555}), "value"),
        (json!({"kind": "amount", "value": -5}), "value"),
        (json!({"kind": "amount", "value": 100000000}), "value"),
        (json!({"min_subtotal": 0}), "min_subtotal"),
        (json!({"usage_limit": 0}), "usage_limit"),
        (json!({"usage_limit": 1.5}), "usage_limit"),
        (json!({"per_customer_limit": 0}), "per_customer_limit"),
        (json!({"starts_at": "yesterday"}), "starts_at"),
        (json!({"ends_at": "0001-01-01T00:00:00Z"}), "ends_at"),
        (
            json!({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}),
            "ends_at",
        ),
        (json!({"ends_at": "2001-01-01T00:00:00Z"}), "ends_at"),
        (json!({"active": "yes"}), "active"),
        (json!({"times_used": 3}), "times_used"),
    ];
    for (patch, field) in cases {
        let mut body = base.clone();
        for (key, value) in patch.as_object().unwrap() {
            body[key] = value.clone();
        }
        app.post("/discounts")
            .token(&admin.token)
            .json(body.clone())
            .send()
            .await
            .invalid_field(field);
    }
    for missing in ["code", "kind", "value"] {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(missing);
        app.post("/discounts")
            .token(&admin.token)
            .json(body)
            .send()
            .await
            .invalid_field(missing);
    }
    assert_eq!(app.count("discounts").await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn changes_are_checked_against_the_stored_discount(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let id = app
        .post("/discounts")
        .token(&admin.token)
        .json(
            json!({"code": "FIVE", "kind": "amount", "value": 50, "usage_limit": 10,
                     "starts_at": "2030-01-01T00:00:00Z"}),
        )
        .send()
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap();
    let put = |body: Value| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            app.put(&format!("/discounts/{id}"))
                .token(&token)
                .json(body)
                .send()
                .await
        }
    };
    put(json!({"code": "OTHER"})).await.invalid_field("code");
    put(json!({})).await.invalid_field("body");
    // 50 is an amount; as a percentage it is fine, 150 would not be.
    put(json!({"kind": "percent", "value": 150}))
        .await
        .invalid_field("value");
    put(json!({"ends_at": "2029-12-31T00:00:00Z"}))
        .await
        .invalid_field("ends_at");
    put(json!({"usage_limit": 0}))
        .await
        .invalid_field("usage_limit");

    sqlx::query("UPDATE discounts SET times_used = 4 WHERE id = ?")
        .bind(id)
        .execute(app.pool())
        .await
        .unwrap();
    let below = put(json!({"usage_limit": 3})).await;
    let problem = below.problem(409);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("usage-limit-below-uses")
    );
    assert_eq!(problem["errors"][0]["field"], "usage_limit");
    put(json!({"usage_limit": 4})).await.expect(200);
    put(json!({"usage_limit": null})).await.expect(200);
    assert_eq!(times_used(&app, id).await, 4, "uses are never set by hand");
    app.put("/discounts/999999")
        .token(&admin.token)
        .json(json!({"active": false}))
        .send()
        .await
        .problem(404);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn discounts_are_for_admins_only(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let body = json!({"code": "FREE", "kind": "percent", "value": 100});
    app.post("/discounts")
        .json(body.clone())
        .send()
        .await
        .problem(401);
    app.post("/discounts")
        .token(&ada.token)
        .json(body)
        .send()
        .await
        .problem(403);
    app.get("/discounts")
        .token(&ada.token)
        .send()
        .await
        .problem(403);
    app.get("/discounts/1")
        .token(&ada.token)
        .send()
        .await
        .problem(403);
    app.put("/discounts/1")
        .token(&ada.token)
        .json(json!({"active": false}))
        .send()
        .await
        .problem(403);
    app.delete("/discounts/1")
        .token(&ada.token)
        .send()
        .await
        .problem(403);
    assert_eq!(app.count("discounts").await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_list_is_newest_first_and_walks_every_discount_once(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let mut made = Vec::new();
    for i in 0..7 {
        let body = app
            .post("/discounts")
            .token(&admin.token)
            .json(json!({"code": format!("CODE-{i}"), "kind": "percent", "value": 5}))
            .send()
            .await
            .expect(201)
            .clone();
        made.push(body["id"].as_u64().unwrap());
    }
    // Same creation instant for several: the id breaks the tie.
    sqlx::query("UPDATE discounts SET created_at = '2026-01-01 00:00:00' WHERE id <= ?")
        .bind(made[3])
        .execute(app.pool())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/discounts?limit=3&cursor={c}"),
            None => "/discounts?limit=3".to_string(),
        };
        let page = app
            .get(&uri)
            .token(&admin.token)
            .send()
            .await
            .expect(200)
            .clone();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected = made.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    app.get("/discounts?limit=0")
        .token(&admin.token)
        .send()
        .await
        .invalid_field("limit");
    app.get("/discounts?cursor=nonsense")
        .token(&admin.token)
        .send()
        .await
        .invalid_field("cursor");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn discounts_through_lambda_events(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let auth = json!({"authorization": format!("Bearer {}", admin.token), "content-type": "application/json"});
    let body = json!({"code": "LAMBDA", "kind": "amount", "value": 2}).to_string();
    let response = invoke_lambda(
        app.router.clone(),
        http_api_event("POST", "/discounts", "", auth.clone(), Some(&body)),
    )
    .await;
    assert_eq!(response["statusCode"], 201);
    assert_eq!(lambda_body(&response)["code"], "LAMBDA");
    let missing = invoke_lambda(
        app.router.clone(),
        http_api_event("GET", "/discounts/77", "", auth, None),
    )
    .await;
    assert_eq!(missing["statusCode"], 404);
}
