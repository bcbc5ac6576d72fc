//! A body that is not JSON is told where it breaks, on every route that takes a body: the
//! routes are read from openapi.json, so a new one is covered the day it is described.

use axum::http::Method;
use serde_json::Value;
use sqlx::MySqlPool;
use testkit::TestApp;

/// Every operation of the contract that takes a request body, as (method, path template).
fn body_taking_routes() -> Vec<(Method, String)> {
    let spec: Value = serde_json::from_str(web::router::OPENAPI).expect("openapi.json parses");
    let mut routes = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if operation.get("requestBody").is_some() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                routes.push((method, path.clone()));
            }
        }
    }
    routes
}

async fn rows(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "categories",
        "products",
        "addresses",
        "cart_items",
        "orders",
        "payments",
        "reviews",
        "idempotency_keys",
        "discounts",
    ] {
        counts.push(app.count(table).await);
    }
    counts
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn malformed_json_is_located_on_every_route_that_takes_a_body(pool: MySqlPool) {
    let app = TestApp::new(pool, tools::serve::router);
    // An admin passes every role check, and as the user in `{user_id}` every ownership
    // check: what is left to refuse the request is its body.
    let admin = app.admin().await;
    let before = rows(&app).await;
    let routes = body_taking_routes();
    assert!(
        routes.len() >= 14,
        "the contract's body-taking routes: {routes:?}"
    );
    for (method, template) in routes {
        let uri = template
            .replace("{user_id}", &admin.id.to_string())
            .replace("{product_id}", "1")
            .replace("{category_id}", "1")
            .replace("{order_id}", "1")
            .replace("{endpoint_id}", "1")
            .replace("{discount_id}", "1")
            .replace("{variant_id}", "1");
        assert!(!uri.contains('{'), "a path parameter left in {uri}");
        let response = app
            .request(method.clone(), &uri)
            .token(&admin.token)
            .header("idempotency-key", "malformed-json")
            // Single quotes: a syntax error before any key could be refused as unknown.
            .raw("application/json", "{\n  'name': 'Tea Pot'\n}")
            .send()
            .await;
        let problem = response.problem(400);
        assert_eq!(problem["type"], "/problems/bad-request", "{method} {uri}");
        assert_eq!(
            problem["detail"], "Malformed JSON at line 2, column 3: key must be a string.",
            "{method} {uri}"
        );
    }
    assert_eq!(rows(&app).await, before, "a refused body changes nothing");
}
