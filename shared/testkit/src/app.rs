//! A function's real router over a real test database, real tokens, and requests and
//! responses that are easy to assert on.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use domain::role::Role;
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::MySqlPool;
use tower::ServiceExt;
use web::state::AppState;
use web::tokens::Tokens;

pub const JWT_SECRET: &str = "test-signing-key-that-is-long-enough-0123456789";

pub fn state(pool: MySqlPool) -> AppState {
    AppState {
        pool,
        // A key that never changes: no source to read it again from.
        tokens: Arc::new(Tokens::new(
            JWT_SECRET.as_bytes(),
            Duration::from_secs(3600),
            None,
            Duration::MAX,
        )),
        credentials: None,
        order_limits: domain::settings::OrderLimits::default(),
    }
}

/// A function's router over a test database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
}

impl TestApp {
    pub fn new(pool: MySqlPool, router: fn(AppState) -> Router) -> Self {
        Self::with_state(state(pool), router)
    }

    /// A router over a state the test has adjusted (a shorter stock hold, say).
    pub fn with_state(state: AppState, router: fn(AppState) -> Router) -> Self {
        Self {
            router: router(state.clone()),
            state,
        }
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.state.pool
    }

    pub fn request(&self, method: Method, uri: &str) -> Call<'_> {
        Call {
            app: self,
            builder: Request::builder().method(method).uri(uri),
            body: Vec::new(),
        }
    }

    pub fn get(&self, uri: &str) -> Call<'_> {
        self.request(Method::GET, uri)
    }

    pub fn post(&self, uri: &str) -> Call<'_> {
        self.request(Method::POST, uri)
    }

    pub fn put(&self, uri: &str) -> Call<'_> {
        self.request(Method::PUT, uri)
    }

    pub fn delete(&self, uri: &str) -> Call<'_> {
        self.request(Method::DELETE, uri)
    }

    /// A user inserted directly (no password hashing), with a valid token.
    pub async fn user(&self, role: Role) -> TestUser {
        insert_user(&self.state, role).await
    }

    pub async fn admin(&self) -> TestUser {
        self.user(Role::Admin).await
    }

    pub async fn customer(&self) -> TestUser {
        self.user(Role::Customer).await
    }

    /// A product with its one default variant, inserted directly; `price` is a decimal
    /// literal such as `"4.10"`.
    pub async fn product(&self, name: &str, price: &str, stock: u32) -> u64 {
        crate::fixtures::insert_product(self.pool(), name, price, stock).await
    }

    /// A variant of `product_id` inserted directly, with `options` as canonical JSON text.
    pub async fn variant(
        &self,
        product_id: u64,
        sku: &str,
        options: &str,
        price: &str,
        stock: u32,
    ) -> u64 {
        crate::fixtures::insert_variant(self.pool(), product_id, sku, options, price, stock).await
    }

    /// A product's stock: the sum of its variants'.
    pub async fn stock(&self, product_id: u64) -> u32 {
        crate::fixtures::stock_of(self.pool(), product_id).await
    }

    pub async fn variant_stock(&self, variant_id: u64) -> u32 {
        sqlx::query_scalar("SELECT stock FROM variants WHERE id = ?")
            .bind(variant_id)
            .fetch_one(self.pool())
            .await
            .expect("read variant stock")
    }

    /// Lets the stock hold of an order run out, as if its time had passed.
    pub async fn expire(&self, order_id: u64) {
        expire_order(self.pool(), order_id).await
    }

    /// Rows in `table` (a name from the test itself, never from input).
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.pool())
            .await
            .expect("count rows")
    }
}

/// Lets the stock hold of an order run out, as if its time had passed.
pub async fn expire_order(pool: &MySqlPool, order_id: u64) {
    sqlx::query("UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = ?")
        .bind(order_id)
        .execute(pool)
        .await
        .expect("expire order");
}

pub struct TestUser {
    pub id: u64,
    pub email: String,
    pub token: String,
}

pub async fn insert_user(state: &AppState, role: Role) -> TestUser {
    let n: u64 = rand_suffix();
    let email = format!("user{n}@example.test");
    let id =
        sqlx::query("INSERT INTO users (name, email, password_hash, role) VALUES (?, ?, ?, ?)")
            .bind(format!("User {n}"))
            .bind(&email)
            // Not a valid PHC string: such a user cannot log in, only use the token below.
            .bind("!test-user-without-password")
            .bind(role)
            .execute(&state.pool)
            .await
            .expect("insert test user")
            .last_insert_id();
    let account = domain::users::Account {
        id,
        role,
        token_version: 0,
    };
    let token = state
        .tokens
        .issue(&account)
        .await
        .expect("issue token")
        .token;
    TestUser { id, email, token }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or_default();
    nanos * 1000 + NEXT.fetch_add(1, Ordering::Relaxed)
}

pub struct Call<'a> {
    app: &'a TestApp,
    builder: axum::http::request::Builder,
    body: Vec<u8>,
}

impl Call<'_> {
    pub fn token(self, token: &str) -> Self {
        self.header(header::AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn json(self, body: Value) -> Self {
        self.raw("application/json", serde_json::to_vec(&body).unwrap())
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, content_type);
        self.body = body.into();
        self
    }

    pub async fn send(self) -> TestResponse {
        let request = self.builder.body(Body::from(self.body)).unwrap();
        let response = self.app.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        TestResponse::new(status, headers, bytes.to_vec())
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl TestResponse {
    /// A response with no body, for steps of a test that are not HTTP calls.
    pub fn empty(status: u16) -> Self {
        Self::new(
            StatusCode::from_u16(status).expect("a valid status"),
            HeaderMap::new(),
            Vec::new(),
        )
    }

    fn new(status: StatusCode, headers: HeaderMap, raw: Vec<u8>) -> Self {
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).unwrap_or_else(|_| {
                panic!("response is not JSON: {}", String::from_utf8_lossy(&raw))
            })
        };
        Self {
            status,
            headers,
            body,
            raw,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a success status and returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        &self.body
    }

    /// Asserts an RFC 9457 problem with this status and returns it.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        self.expect(status);
        assert_eq!(
            self.header("content-type"),
            Some(web::error::PROBLEM_JSON),
            "errors are problem+json"
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["type"].is_string() && self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
        &self.body
    }

    /// Asserts a 400 that names `field` among its errors.
    #[track_caller]
    pub fn invalid_field(&self, field: &str) {
        let problem = self.problem(400);
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.contains(&field),
            "expected an error on {field}, got {problem}"
        );
    }
}
