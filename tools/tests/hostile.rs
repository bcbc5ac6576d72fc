//! Hostile input across every route: each gets the contract's 4xx, never a 5xx, and the
//! database is left exactly as it was.

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, TestResponse, TestUser};

struct World {
    app: TestApp,
    admin: TestUser,
    customer: TestUser,
    product: u64,
    order: u64,
}

async fn world(pool: MySqlPool) -> World {
    let app = TestApp::new(pool, tools::serve::router);
    let admin = app.admin().await;
    let customer = app.customer().await;
    let product = app.product("Mug", "4", 10).await;
    let order = sqlx::query("INSERT INTO orders (user_id, total, expires_at) VALUES (?, 4, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)")
        .bind(customer.id)
        .execute(app.pool())
        .await
        .unwrap()
        .last_insert_id();
    World {
        app,
        admin,
        customer,
        product,
        order,
    }
}

/// Row counts and the sums that matter: a rejected request must change none of them.
async fn fingerprint(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "users",
        "categories",
        "products",
        "cart_items",
        "orders",
        "order_items",
        "payments",
        "reviews",
        "idempotency_keys",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(app.pool())
            .await
            .unwrap();
        out.push(format!("{table}={n}"));
    }
    let state: (String, String) = sqlx::query_as(
        "SELECT (SELECT CAST(COALESCE(SUM(stock), 0) AS CHAR) FROM variants), CAST(COALESCE(SUM(price), 0) AS CHAR) FROM products",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    out.push(format!("{state:?}"));
    out
}

#[track_caller]
fn client_error(response: &TestResponse, expected: u16, what: &str) {
    assert_eq!(
        response.status.as_u16(),
        expected,
        "{what}: {}",
        response.body
    );
    response.problem(expected);
}

/// Every JSON-taking route, with the token it needs.
fn json_routes(w: &World) -> Vec<(axum::http::Method, String, String)> {
    use axum::http::Method;
    let (admin, customer) = (w.admin.token.clone(), w.customer.token.clone());
    vec![
        (Method::POST, "/products".into(), admin.clone()),
        (
            Method::PUT,
            format!("/products/{}", w.product),
            admin.clone(),
        ),
        (Method::POST, "/categories".into(), admin.clone()),
        (Method::POST, "/users/register".into(), String::new()),
        (Method::POST, "/users/login".into(), String::new()),
        (
            Method::PUT,
            format!("/users/{}", w.customer.id),
            customer.clone(),
        ),
        (
            Method::PUT,
            format!("/users/{}/cart/items/{}", w.customer.id, w.product),
            customer.clone(),
        ),
        (Method::POST, "/orders".into(), customer.clone()),
        (
            Method::PUT,
            format!("/orders/{}", w.order),
            customer.clone(),
        ),
        (Method::POST, "/payments".into(), customer.clone()),
        (
            Method::POST,
            format!("/products/{}/reviews", w.product),
            customer,
        ),
    ]
}

async fn send(
    w: &World,
    method: &axum::http::Method,
    uri: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> TestResponse {
    let mut call = w.app.request(method.clone(), uri).raw(content_type, body);
    if !token.is_empty() {
        call = call.token(token);
    }
    call.send().await
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn malformed_bodies_are_refused_everywhere(pool: MySqlPool) {
    let w = world(pool).await;
    let before = fingerprint(&w.app).await;
    let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!(
        "{{\"a\":{}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let over_limit = vec![b' '; 1024 * 1024 + 1];
    let bodies: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not JSON", b"hello".to_vec(), 400),
        ("truncated", b"{\"name\": \"x".to_vec(), 400),
        ("array", b"[]".to_vec(), 400),
        ("string", b"\"x\"".to_vec(), 400),
        ("null", b"null".to_vec(), 400),
        ("trailing garbage", b"{} x".to_vec(), 400),
        (
            "invalid UTF-8",
            vec![b'{', b'"', 0xC3, 0x28, b'"', b':', b'1', b'}'],
            400,
        ),
        ("byte order mark", b"\xEF\xBB\xBF{}".to_vec(), 400),
        ("deeply nested array", nested.into_bytes(), 400),
        ("deeply nested object", deep_object.into_bytes(), 400),
        ("duplicate keys", b"{\"a\":1,\"a\":2}".to_vec(), 400),
        ("1 MiB + 1 byte", over_limit, 413),
    ];
    for (method, uri, token) in json_routes(&w) {
        for (what, body, status) in &bodies {
            let response = send(&w, &method, &uri, &token, "application/json", body.clone()).await;
            client_error(&response, *status, &format!("{method} {uri} {what}"));
        }
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
        ] {
            let response = send(&w, &method, &uri, &token, content_type, b"{}".to_vec()).await;
            client_error(&response, 415, &format!("{method} {uri} {content_type}"));
        }
    }
    assert_eq!(fingerprint(&w.app).await, before);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn absurd_numbers_are_refused(pool: MySqlPool) {
    let w = world(pool).await;
    let before = fingerprint(&w.app).await;
    let huge_int = "184467440737095516160000";
    let cases: Vec<(&str, String, &str, String)> = vec![
        (
            "/products",
            w.admin.token.clone(),
            "price",
            format!(r#"{{"name":"x","price":{huge_int},"stock":1}}"#),
        ),
        (
            "/products",
            w.admin.token.clone(),
            "price",
            r#"{"name":"x","price":1e999,"stock":1}"#.into(),
        ),
        (
            "/products",
            w.admin.token.clone(),
            "price",
            r#"{"name":"x","price":-0.0,"stock":1}"#.into(),
        ),
        (
            "/products",
            w.admin.token.clone(),
            "price",
            r#"{"name":"x","price":0.000000000000000000000000000001,"stock":1}"#.into(),
        ),
        (
            "/products",
            w.admin.token.clone(),
            "price",
            r#"{"name":"x","price":"Infinity","stock":1}"#.into(),
        ),
        (
            "/products",
            w.admin.token.clone(),
            "stock",
            format!(r#"{{"name":"x","price":1,"stock":{huge_int}}}"#),
        ),
        (
            "/products",
            w.admin.token.clone(),
            "stock",
            r#"{"name":"x","price":1,"stock":-9223372036854775809}"#.into(),
        ),
        (
            "/products",
            w.admin.token.clone(),
            "category_id",
            format!(r#"{{"name":"x","price":1,"stock":1,"category_id":{huge_int}}}"#),
        ),
        (
            "/orders",
            w.customer.token.clone(),
            "items[0].quantity",
            format!(r#"{{"items":[{{"product_id":1,"quantity":{huge_int}}}]}}"#),
        ),
        (
            "/orders",
            w.customer.token.clone(),
            "items[0].product_id",
            r#"{"items":[{"product_id":-1,"quantity":1}]}"#.into(),
        ),
        (
            "/payments",
            w.customer.token.clone(),
            "amount",
            format!(r#"{{"order_id":{},"amount":NaN,"method":"card"}}"#, w.order),
        ),
        (
            "/payments",
            w.customer.token.clone(),
            "amount",
            format!(
                r#"{{"order_id":{},"amount":"1e3","method":"card"}}"#,
                w.order
            ),
        ),
        (
            "/payments",
            w.customer.token.clone(),
            "order_id",
            r#"{"order_id":1.5,"amount":1,"method":"card"}"#.into(),
        ),
    ];
    for (uri, token, field, body) in cases {
        let response = w
            .app
            .post(uri)
            .token(&token)
            .raw("application/json", body.clone())
            .send()
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
        // Non-JSON literals (NaN) are syntax errors without a field; the rest name theirs.
        if !body.contains("NaN") {
            response.invalid_field(field);
        }
    }
    assert_eq!(fingerprint(&w.app).await, before);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn bad_path_ids_and_query_strings_are_400_or_404(pool: MySqlPool) {
    let w = world(pool).await;
    let before = fingerprint(&w.app).await;
    for id in [
        "0",
        "-1",
        "abc",
        "1.5",
        "18446744073709551616",
        "99999999999999999999999999",
        "%00",
        "1%20OR%201=1",
    ] {
        for template in [
            "/products/{}",
            "/categories/{}",
            "/orders/{}",
            "/payments/{}",
            "/users/{}",
            "/users/{}/orders",
            "/users/{}/cart",
            "/products/{}/reviews",
            "/orders/{}/payments",
        ] {
            let uri = template.replace("{}", id);
            let response = w.app.get(&uri).token(&w.admin.token).send().await;
            client_error(&response, 400, &uri);
        }
    }
    // The largest id that fits is a well-formed id of nothing.
    w.app
        .get("/products/18446744073709551615")
        .send()
        .await
        .problem(404);

    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=1e2",
        "limit=99999999999999999999",
        "limit=1&limit=2",
        "sort=price%3BDROP%20TABLE%20products",
        "sort=",
        "min_price=abc",
        "min_price=-0.01",
        "max_price=NaN",
        "category_id=-5",
        "category_id=1e3",
        "in_stock=yes",
        "cursor=%FF%FE",
        "cursor=eyJzIjoicHJpY2UiLCJ2IjoiJyBPUiAxPTEiLCJpIjoxfQ&sort=price",
    ] {
        let response = w.app.get(&format!("/products?{query}")).send().await;
        client_error(&response, 400, query);
    }
    // Metacharacters in free text are just text.
    for q in [
        "%27%20OR%201%3D1%20--",
        "%25",
        "_",
        "%5C",
        "%22%3B",
        "%F0%9F%A6%80",
    ] {
        let response = w.app.get(&format!("/products?q={q}")).send().await;
        assert_eq!(response.expect(200)["items"], json!([]), "q={q}");
    }
    assert_eq!(fingerprint(&w.app).await, before);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn hostile_text_is_stored_and_returned_verbatim(pool: MySqlPool) {
    let w = world(pool).await;
    let texts = [
        "Robert'); DROP TABLE users;--",
        "\" OR \"\"=\"",
        "%_\\ LIKE wildcards",
        "<script>alert(1)</script>",
        "emoji 🦀🛒 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "RTL \u{202E}txet",
        "zero\u{200B}width",
        "NUL\u{0}byte",
        "ünïcödé ß ﬁ",
    ];
    for (i, text) in texts.iter().enumerate() {
        let category = w
            .app
            .post("/categories")
            .token(&w.admin.token)
            .json(json!({"name": format!("{text} {i}"), "description": text}))
            .send()
            .await;
        assert_eq!(category.expect(201)["description"], *text);
        let product = w
            .app
            .post("/products")
            .token(&w.admin.token)
            .json(json!({"name": text, "description": text, "price": 1, "stock": 1}))
            .send()
            .await;
        let id = product.expect(201)["id"].as_u64().unwrap();
        let fetched = w.app.get(&format!("/products/{id}")).send().await;
        assert_eq!(fetched.expect(200)["name"], *text);
        assert_eq!(fetched.body["description"], *text);

        let user = w.app.post("/users/register")
            .json(json!({"name": text, "email": format!("u{i}@example.com"), "password": format!("{text}-password")}))
            .send().await;
        assert_eq!(user.expect(201)["name"], *text);
        let login = w.app.post("/users/login")
            .json(json!({"email": format!("u{i}@example.com"), "password": format!("{text}-password")}))
            .send().await;
        let token = login.expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let review = w
            .app
            .post(&format!("/products/{id}/reviews"))
            .token(&token)
            .json(json!({"rating": 3, "comment": text}))
            .send()
            .await;
        assert_eq!(review.expect(201)["comment"], *text);
        assert_eq!(review.body["user_name"], *text);
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn tokens_forged_or_misplaced_are_401_on_every_protected_route(pool: MySqlPool) {
    let w = world(pool).await;
    let before = fingerprint(&w.app).await;
    let routes = json_routes(&w);
    let headers = [
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer a.b.c".to_string(),
        format!("Bearer {}x", w.admin.token),
        format!("Token {}", w.admin.token),
        format!("Bearer {}", "A".repeat(8000)),
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwicm9sZSI6ImFkbWluIiwiaWF0IjoxLCJleHAiOjQxMDI0NDQ4MDAsInZlciI6MH0.".to_string(),
    ];
    for (method, uri, token) in routes {
        if token.is_empty() {
            continue;
        }
        for header in &headers {
            let response = w
                .app
                .request(method.clone(), &uri)
                .header("authorization", header)
                .json(json!({}))
                .send()
                .await;
            client_error(
                &response,
                401,
                &format!("{method} {uri} with {}", &header[..header.len().min(30)]),
            );
            assert!(response.header("www-authenticate").is_some());
        }
    }
    assert_eq!(fingerprint(&w.app).await, before);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn wrong_methods_and_unknown_paths_are_problems(pool: MySqlPool) {
    let w = world(pool).await;
    for (method, uri) in [
        ("PATCH", "/products"),
        ("DELETE", "/orders"),
        ("GET", "/payments"),
        ("PUT", "/users/register"),
        ("POST", "/reviews/1"),
    ] {
        let response = w.app.request(method.parse().unwrap(), uri).send().await;
        client_error(&response, 405, uri);
        assert!(response.header("allow").is_some(), "{uri}");
    }
    for uri in [
        "/",
        "/product",
        "/products/1/reviewz",
        "/users",
        "/../etc/passwd",
    ] {
        client_error(&w.app.get(uri).send().await, 404, uri);
    }
    let value: Value = w.app.get("/openapi.json").send().await.expect(200).clone();
    assert_eq!(value["openapi"], "3.1.0");
}
