//! Helpers for the function crates' integration tests: a real router over a real database,
//! real tokens, and real API Gateway events through `lambda_http`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use lambda_http::{Context, LambdaEvent, Service};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use tower::ServiceExt;

use crate::auth::TokenKeys;
use crate::state::AppState;
use crate::users::Role;

pub const JWT_SECRET: &str = "test-signing-key-that-is-long-enough-0123456789";

pub fn state(pool: MySqlPool) -> AppState {
    AppState {
        pool,
        tokens: Arc::new(TokenKeys::new(
            JWT_SECRET.as_bytes(),
            Duration::from_secs(3600),
        )),
        credentials: None,
        order_hold: crate::config::DEFAULT_ORDER_HOLD,
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

    /// A product inserted directly; `price` is a decimal literal such as `"4.10"`.
    pub async fn product(&self, name: &str, price: &str, stock: u32) -> u64 {
        sqlx::query("INSERT INTO products (name, price, stock) VALUES (?, ?, ?)")
            .bind(name)
            .bind(price)
            .bind(stock)
            .execute(self.pool())
            .await
            .expect("insert test product")
            .last_insert_id()
    }

    pub async fn stock(&self, product_id: u64) -> u32 {
        sqlx::query_scalar("SELECT stock FROM products WHERE id = ?")
            .bind(product_id)
            .fetch_one(self.pool())
            .await
            .expect("read stock")
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
    let token = state.tokens.issue(id, role, 0).expect("issue token").token;
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
            Some(crate::error::PROBLEM_JSON),
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

/// An API Gateway HTTP API (payload v2) event, as API Gateway sends it.
pub fn http_api_event(
    method: &str,
    path: &str,
    query: &str,
    headers: Value,
    body: Option<&str>,
) -> Value {
    let mut headers = headers;
    if body.is_some() && headers.get("content-type").is_none() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "agent"
            },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2026:09:30:00 +0000",
            "timeEpoch": 1795512600000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// An API Gateway REST API (payload v1) event for a deployed stage (`/Prod/...`).
pub fn rest_api_event(
    stage: &str,
    method: &str,
    path: &str,
    query: Value,
    headers: Value,
    body: Option<&str>,
) -> Value {
    let mut headers = headers;
    if body.is_some() && headers.get("content-type").is_none() {
        headers["content-type"] = json!("application/json");
    }
    let multi_headers: serde_json::Map<String, Value> = headers
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.clone(), json!([v]))).collect())
        .unwrap_or_default();
    let multi_query: serde_json::Map<String, Value> = query
        .as_object()
        .map(|q| q.iter().map(|(k, v)| (k.clone(), json!([v]))).collect())
        .unwrap_or_default();
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": if multi_query.is_empty() { Value::Null } else { query.clone() },
        "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { Value::Object(multi_query) },
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": stage,
            "requestId": "id",
            "identity": {"sourceIp": "192.0.2.1", "userAgent": "agent"},
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "apiId": "api-id",
            "path": format!("/{stage}{path}"),
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": 1795512600000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// Sends an API Gateway event through `lambda_http` exactly as the Lambda runtime does,
/// and returns the response JSON the runtime would post back to Lambda.
pub async fn invoke_lambda(router: Router, event: Value) -> Value {
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_value(event).expect("a valid API Gateway event");
    let mut adapter = lambda_http::Adapter::from(crate::http::lambda_service(router));
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the router never fails");
    serde_json::to_value(response).expect("a serialisable Lambda response")
}

/// The JSON body of a Lambda proxy response.
pub fn lambda_body(response: &Value) -> Value {
    let body = response["body"].as_str().unwrap_or_default();
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).expect("JSON body")
    }
}

/// A loopback TCP proxy in front of the database, to cut it off and bring it back.
pub struct TcpProxy {
    pub addr: std::net::SocketAddr,
    target: std::net::SocketAddr,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl TcpProxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            target,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let target = self.target;
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// The database "goes down": the port is closed and every open connection is cut.
    pub fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The database "comes back" on the same address.
    pub async fn restart(&self) {
        // The aborted listener may take a moment to release the port.
        for _ in 0..50 {
            if let Ok(listener) = tokio::net::TcpListener::bind(self.addr).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("could not rebind {}", self.addr);
    }
}

/// Runs `n` copies of a task at once (each on its own tokio task) and returns their
/// results in order: the shape of every concurrency test.
pub async fn in_parallel<T, Fut>(n: usize, task: impl Fn(usize) -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut results = Vec::with_capacity(n);
    for handle in handles {
        results.push(handle.await.expect("a parallel task panicked"));
    }
    results
}
