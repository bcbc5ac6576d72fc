//! `make bench`: latency, throughput, cold start and memory of the API, each beside a floor.
//!
//! - Warm requests go over loopback HTTP to the release `serve` binary (the same routers the
//!   functions run); the floor issues the same SQL through the same domain functions with no
//!   HTTP or JSON in front. Client and server share this machine's cores.
//! - Cold start: each function binary is started against a loopback stand-in for the Lambda
//!   runtime API and timed from process start to its first response; beside it, a bare
//!   `lambda_http` binary and one fresh database connection + query.
//! - Bootstrap sizes come from `cargo lambda build --release --arm64` (`make package`).
//!
//! Writes the table to BENCHMARKS.md.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform::config::{DEFAULT_ORDER_HOLD, Secret};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use web::state::AppState;

const JWT_SECRET: &str = "benchmark-signing-key-benchmark-signing-key";
const PRODUCTS: u64 = 100_000;
const PASSWORD: &str = "benchmark password";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[tokio::main]
async fn main() {
    let server = std::env::var("BENCH_DATABASE_SERVER")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let url = format!("{server}/shop_bench");
    let bin_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();

    eprintln!("preparing {PRODUCTS} products in {url} ...");
    let pool = prepare_database(&url).await;
    let fixture = Fixture::load(&pool).await;

    let port = free_port();
    let mut serve = Command::new(bin_dir.join("serve"))
        .env("DATABASE_URL", &url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("DB_MAX_CONNECTIONS", "16")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start target/release/serve (built by make bench)");
    let base = format!("http://127.0.0.1:{port}");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    wait_until_up(&client, &base).await;

    let state = bench_state(&url);
    let login = json!({"email": fixture.email, "password": PASSWORD});
    let logged_in = call(
        &client,
        "POST",
        &format!("{base}/users/login"),
        None,
        Some(&login),
        200,
    )
    .await;
    let token = serde_json::from_slice::<Value>(&logged_in).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let mut rows = Vec::new();
    let mut requests = 0usize;
    for scenario in scenarios(&fixture) {
        for concurrency in [1usize, 16] {
            let n = scenario.requests * if concurrency == 1 { 1 } else { 4 };
            let http = {
                let (client, base, token, scenario) = (
                    client.clone(),
                    base.clone(),
                    token.clone(),
                    scenario.clone(),
                );
                measure(n, concurrency, move || {
                    let (client, base, token, scenario) = (
                        client.clone(),
                        base.clone(),
                        token.clone(),
                        scenario.clone(),
                    );
                    async move {
                        let uri = format!("{base}{}", scenario.path);
                        call(
                            &client,
                            scenario.method,
                            &uri,
                            Some(&token),
                            scenario.body.as_ref(),
                            scenario.status,
                        )
                        .await;
                    }
                })
                .await
            };
            requests += n + n / 10;
            let floor = {
                let (state, fixture, name) = (state.clone(), fixture.clone(), scenario.name);
                measure(n, concurrency, move || {
                    floor(state.clone(), fixture.clone(), name)
                })
                .await
            };
            rows.push(Row {
                name: scenario.name,
                concurrency,
                http,
                floor,
            });
        }
    }

    // Top up to 10k requests before reading the server's peak memory.
    while requests < 10_000 {
        call(
            &client,
            "GET",
            &format!("{base}/products/{}", fixture.product_ids[0]),
            None,
            None,
            200,
        )
        .await;
        requests += 1;
    }
    let rss_kib = peak_rss_kib(serve.id());
    let _ = serve.kill();
    let _ = serve.wait();

    eprintln!("measuring cold starts ...");
    let cold = cold_starts(&bin_dir, &url, &fixture, &token).await;
    let db_round_trip = fresh_connection_round_trip(&url).await;
    let sizes = bootstrap_sizes();

    let report = render(&rows, &cold, db_round_trip, &sizes, rss_kib, requests);
    println!("{report}");
    std::fs::write(workspace_root().join("BENCHMARKS.md"), report).expect("write BENCHMARKS.md");
}

#[derive(Clone)]
struct Fixture {
    user_id: u64,
    email: String,
    product_ids: Vec<u64>,
    order_id: u64,
    deep_cursor: String,
}

impl Fixture {
    async fn load(pool: &MySqlPool) -> Fixture {
        let (user_id, email): (u64, String) = sqlx::query_as(
            "SELECT id, CAST(email AS CHAR) FROM users WHERE role = 'customer' LIMIT 1",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let product_ids: Vec<u64> =
            sqlx::query_scalar("SELECT id FROM products ORDER BY id LIMIT 3")
                .fetch_all(pool)
                .await
                .unwrap();
        let order_id: u64 = sqlx::query_scalar("SELECT id FROM orders LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap();
        // The position 20 items before the end of a newest-first walk of the whole catalogue.
        let (at, id): (chrono::DateTime<chrono::Utc>, u64) = sqlx::query_as(
            "SELECT created_at, id FROM products ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
        )
        .bind(PRODUCTS - 21)
        .fetch_one(pool)
        .await
        .unwrap();
        let deep_cursor =
            domain::page::Cursor::encode("-created_at", domain::time::cursor_value(at), id);
        Fixture {
            user_id,
            email,
            product_ids,
            order_id,
            deep_cursor,
        }
    }
}

#[derive(Clone)]
struct Scenario {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    status: u16,
    requests: usize,
}

fn scenarios(f: &Fixture) -> Vec<Scenario> {
    let lines: Vec<Value> = f
        .product_ids
        .iter()
        .map(|id| json!({"product_id": id, "quantity": 1}))
        .collect();
    vec![
        Scenario {
            name: "GET /products/{id}",
            method: "GET",
            path: format!("/products/{}", f.product_ids[0]),
            body: None,
            status: 200,
            requests: 500,
        },
        Scenario {
            name: "GET /products?limit=20",
            method: "GET",
            path: "/products?limit=20".into(),
            body: None,
            status: 200,
            requests: 500,
        },
        Scenario {
            name: "GET /products (page 100k deep)",
            method: "GET",
            path: format!("/products?limit=20&cursor={}", f.deep_cursor),
            body: None,
            status: 200,
            requests: 500,
        },
        Scenario {
            name: "POST /orders (3 lines)",
            method: "POST",
            path: "/orders".into(),
            body: Some(json!({"items": lines})),
            status: 201,
            requests: 300,
        },
        Scenario {
            name: "POST /users/login",
            method: "POST",
            path: "/users/login".into(),
            body: Some(json!({"email": f.email, "password": PASSWORD})),
            status: 200,
            requests: 40,
        },
    ]
}

/// The same work as a scenario, straight through the domain functions and sqlx.
async fn floor(state: AppState, f: Fixture, scenario: &'static str) {
    use domain::products::{ProductQuery, get, list};
    match scenario {
        "GET /products/{id}" => {
            get(&state.pool, f.product_ids[0]).await.unwrap();
        }
        "GET /products?limit=20" => {
            list(&state.pool, &ProductQuery::default()).await.unwrap();
        }
        "GET /products (page 100k deep)" => {
            let query = ProductQuery {
                cursor: Some(f.deep_cursor.clone()),
                ..ProductQuery::default()
            };
            list(&state.pool, &query).await.unwrap();
        }
        "POST /orders (3 lines)" => {
            let lines: Vec<(u64, u32)> = f.product_ids.iter().map(|id| (*id, 1)).collect();
            platform::db::transaction(&state.pool, |tx| {
                let lines = lines.clone();
                Box::pin(async move {
                    domain::orders::place(
                        tx,
                        f.user_id,
                        &lines,
                        &domain::addresses::Shipping::Nowhere,
                        domain::orders::Actor::Customer,
                        DEFAULT_ORDER_HOLD,
                    )
                    .await
                })
            })
            .await
            .unwrap();
        }
        "POST /users/login" => {
            let credentials: domain::users::Credentials =
                serde_json::from_value(json!({"email": f.email, "password": PASSWORD})).unwrap();
            let account = domain::users::login(&state.pool, credentials)
                .await
                .unwrap();
            state.tokens.issue(&account).await.unwrap();
        }
        other => unreachable!("{other}"),
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

/// Runs `n` calls of `work` on `concurrency` workers after a short warm-up.
async fn measure<F, Fut>(n: usize, concurrency: usize, work: F) -> Stats
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    for _ in 0..(n / 10).max(5) {
        work().await;
    }
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (work, latencies) = (work.clone(), latencies.clone());
            let share = n / concurrency + usize::from(w < n % concurrency);
            tokio::spawn(async move {
                for _ in 0..share {
                    let t = Instant::now();
                    work().await;
                    latencies.lock().unwrap().push(t.elapsed());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        per_second: n as f64 / elapsed.as_secs_f64(),
    }
}

/// One request; the body is checked for status only, so the client spends as little CPU as
/// it can on the cores it shares with the server.
async fn call(
    client: &HttpClient,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
    status: u16,
) -> Bytes {
    let mut request = hyper::Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(body).unwrap())
        }
        None => Bytes::new(),
    };
    let response = client
        .request(request.body(Full::new(body)).unwrap())
        .await
        .expect("request");
    let got = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        got,
        status,
        "{method} {uri}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

async fn wait_until_up(client: &HttpClient, base: &str) {
    for _ in 0..300 {
        let request = hyper::Request::get(format!("{base}/products?limit=1"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Ok(response) = client.request(request).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not come up");
}

fn bench_state(url: &str) -> AppState {
    let config = platform::config::Config {
        database: platform::config::DatabaseConfig {
            options: platform::config::options_from_url(url).unwrap(),
            max_connections: 16,
            credentials: None,
        },
        jwt_secret: Secret::new(JWT_SECRET),
        jwt_source: None,
        secrets_refresh: platform::config::DEFAULT_SECRETS_REFRESH,
        token_ttl: Duration::from_secs(3600),
        order_hold: DEFAULT_ORDER_HOLD,
    };
    AppState::new(&config)
}

async fn prepare_database(url: &str) -> MySqlPool {
    use sqlx::migrate::MigrateDatabase;
    if sqlx::MySql::database_exists(url).await.unwrap() {
        sqlx::MySql::drop_database(url).await.unwrap();
    }
    sqlx::MySql::create_database(url).await.unwrap();
    let pool = platform::db::pool_with(platform::config::options_from_url(url).unwrap(), 4);
    domain::MIGRATOR.run(&pool).await.unwrap();
    // Spread over time so that the newest-first walk has distinct timestamps.
    for start in (0..PRODUCTS).step_by(5_000) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO products (name, description, price, stock, created_at) ",
        );
        qb.push_values(start..(start + 5_000).min(PRODUCTS), |mut row, i| {
            row.push_bind(format!("Product {i}"))
                .push_bind(format!("Benchmark product number {i}"))
                .push_bind(rust_decimal::Decimal::new(100 + (i as i64 % 9_900), 2))
                .push_bind(1_000_000_000u32)
                .push("UTC_TIMESTAMP(6) - INTERVAL ")
                .push_bind_unseparated(i)
                .push_unseparated(" SECOND");
        });
        qb.build().execute(&pool).await.unwrap();
    }
    let hash = platform::password::hash(PASSWORD.into()).await.unwrap();
    let user = sqlx::query(
        "INSERT INTO users (name, email, password_hash) VALUES ('Bench', 'bench@example.com', ?)",
    )
    .bind(hash)
    .execute(&pool)
    .await
    .unwrap()
    .last_insert_id();
    let order = sqlx::query("INSERT INTO orders (user_id, total, expires_at) VALUES (?, 1, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR)")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap()
        .last_insert_id();
    sqlx::query("INSERT INTO payments (order_id, amount, method) VALUES (?, 1, 'card')")
        .bind(order)
        .execute(&pool)
        .await
        .unwrap();
    pool
}

struct Row {
    name: &'static str,
    concurrency: usize,
    http: Stats,
    floor: Stats,
}

struct Cold {
    name: String,
    median: Duration,
    /// Peak RSS after [`INVOCATIONS_FOR_RSS`] invocations.
    peak_rss_kib: Option<u64>,
}

const INVOCATIONS_FOR_RSS: usize = 10_000;

/// Each function from process start to first response, through a loopback runtime API.
async fn cold_starts(bin_dir: &Path, url: &str, f: &Fixture, token: &str) -> Vec<Cold> {
    let requests = [
        ("bare-lambda", "GET", "/".to_string()),
        ("products", "GET", format!("/products/{}", f.product_ids[0])),
        ("categories", "GET", "/categories".to_string()),
        ("users", "GET", format!("/users/{}", f.user_id)),
        ("cart", "GET", format!("/users/{}/cart", f.user_id)),
        ("orders", "GET", format!("/users/{}/orders", f.user_id)),
        (
            "payments",
            "GET",
            format!("/orders/{}/payments", f.order_id),
        ),
        (
            "reviews",
            "GET",
            format!("/products/{}/reviews", f.product_ids[0]),
        ),
    ];
    let mut out = Vec::new();
    for (name, method, path) in requests {
        let binary = bin_dir.join(name);
        if !binary.exists() {
            continue;
        }
        let event = http_api_event(method, &path, token);
        let mut times = Vec::new();
        for _ in 0..5 {
            times.push(
                run_function(&binary, url, event.clone(), 1)
                    .await
                    .first_response,
            );
        }
        times.sort();
        let long_run = run_function(&binary, url, event, INVOCATIONS_FOR_RSS).await;
        out.push(Cold {
            name: name.to_string(),
            median: times[times.len() / 2],
            peak_rss_kib: long_run.peak_rss_kib,
        });
    }
    out
}

/// An API Gateway HTTP API (payload v2) event.
fn http_api_event(method: &str, path: &str, token: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}")},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.example",
            "domainPrefix": "bench", "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:09:30:00 +0000", "timeEpoch": 1795512600000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "bench"}
        },
        "isBase64Encoded": false
    })
}

/// What one run of a function binary against the runtime stand-in measured.
struct Run {
    /// Process start to the first response.
    first_response: Duration,
    /// Peak resident memory once every invocation was answered.
    peak_rss_kib: Option<u64>,
}

/// Starts `binary` against a loopback stand-in for the Lambda runtime API, serves it
/// `invocations` copies of `event` one after another (as Lambda does), and stops it.
async fn run_function(binary: &Path, url: &str, event: Value, invocations: usize) -> Run {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Instant>();
    let (all_tx, all_rx) = tokio::sync::oneshot::channel::<()>();
    let first = Arc::new(Mutex::new(Some(first_tx)));
    let all = Arc::new(Mutex::new(Some(all_tx)));
    let served = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            axum::routing::get({
                let served = served.clone();
                move || {
                    let n = served.fetch_add(1, Ordering::SeqCst);
                    let event = event.clone();
                    async move {
                        if n >= invocations {
                            // Every invocation is out: hold the next poll open.
                            std::future::pending::<()>().await;
                        }
                        let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            .to_string();
                        (
                            [
                                ("lambda-runtime-aws-request-id", format!("bench-{n}")),
                                ("lambda-runtime-deadline-ms", deadline),
                                (
                                    "lambda-runtime-invoked-function-arn",
                                    "arn:aws:lambda:us-east-1:123456789012:function:bench"
                                        .to_string(),
                                ),
                                (
                                    "lambda-runtime-trace-id",
                                    "Root=1-00000000-000000000000000000000000".to_string(),
                                ),
                            ],
                            axum::Json(event),
                        )
                    }
                }
            }),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            axum::routing::post(move |body: Bytes| {
                let (first, all, answered) = (first.clone(), all.clone(), answered.clone());
                async move {
                    let status = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["statusCode"].as_u64())
                        .unwrap_or(0);
                    assert_eq!(status, 200, "the function answered {status}");
                    if let Some(tx) = first.lock().unwrap().take() {
                        let _ = tx.send(Instant::now());
                    }
                    if answered.fetch_add(1, Ordering::SeqCst) + 1 == invocations
                        && let Some(tx) = all.lock().unwrap().take()
                    {
                        let _ = tx.send(());
                    }
                    axum::http::StatusCode::ACCEPTED
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child: Child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("DATABASE_URL", url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start function binary");
    let at = tokio::time::timeout(Duration::from_secs(30), first_rx)
        .await
        .expect("first response")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(300), all_rx)
        .await
        .expect("every response")
        .unwrap();
    let peak_rss_kib = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    Run {
        first_response: at - started,
        peak_rss_kib,
    }
}

async fn fresh_connection_round_trip(url: &str) -> Duration {
    use sqlx::Connection;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut conn =
            sqlx::MySqlConnection::connect_with(&platform::config::options_from_url(url).unwrap())
                .await
                .unwrap();
        sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
        times.push(t.elapsed());
        let _ = conn.close().await;
    }
    times.sort();
    times[2]
}

fn bootstrap_sizes() -> Vec<(String, Option<u64>)> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    [
        "products",
        "categories",
        "users",
        "cart",
        "orders",
        "payments",
        "reviews",
        "migrate",
    ]
    .iter()
    .map(|f| {
        let size = std::fs::metadata(target.join("lambda").join(f).join("bootstrap"))
            .ok()
            .map(|m| m.len());
        (f.to_string(), size)
    })
    .collect()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn render(
    rows: &[Row],
    cold: &[Cold],
    db: Duration,
    sizes: &[(String, Option<u64>)],
    rss_kib: Option<u64>,
    requests: usize,
) -> String {
    let mut out = String::new();
    let machine = machine_description();
    out.push_str("# Benchmarks\n\n");
    out.push_str(&format!(
        "Measured by `make bench` in one run on {machine}.\n\n"
    ));
    out.push_str("## Warm requests: HTTP beside the floor (same SQL through sqlx, no HTTP)\n\n");
    out.push_str("| scenario | conc. | HTTP p50 ms | HTTP p99 ms | HTTP req/s | floor p50 ms | floor p99 ms | floor req/s | HTTP/floor throughput |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut by_name: HashMap<(&str, usize), &Row> = HashMap::new();
    for row in rows {
        by_name.insert((row.name, row.concurrency), row);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.2} |\n",
            row.name,
            row.concurrency,
            ms(row.http.p50),
            ms(row.http.p99),
            row.http.per_second,
            ms(row.floor.p50),
            ms(row.floor.p99),
            row.floor.per_second,
            row.http.per_second / row.floor.per_second
        ));
    }
    out.push_str("\nTarget: HTTP/floor throughput ≥ 0.75 at concurrency 16.\n\n");
    if let (Some(first), Some(deep)) = (
        by_name.get(&("GET /products?limit=20", 16)),
        by_name.get(&("GET /products (page 100k deep)", 16)),
    ) {
        out.push_str(&format!(
            "Deep page vs first page (p50, concurrency 16): {:.2}× (target ≤ 1.5×).\n\n",
            deep.http.p50.as_secs_f64() / first.http.p50.as_secs_f64()
        ));
    }
    out.push_str("## Cold start: process start to first response through a loopback runtime API (median of 5)\n\n");
    out.push_str(&format!(
        "One fresh database connection + query: {} ms.\n\n",
        ms(db)
    ));
    out.push_str(&format!(
        "| binary | cold start ms | vs bare lambda_http | target (2× bare + 1 DB round trip) ms | peak RSS after {INVOCATIONS_FOR_RSS} invocations |\n|---|---:|---:|---:|---:|\n"
    ));
    let bare = cold
        .iter()
        .find(|c| c.name == "bare-lambda")
        .map(|c| c.median);
    for c in cold {
        let (ratio, target) = match bare {
            Some(b) => (
                format!("{:.2}×", c.median.as_secs_f64() / b.as_secs_f64()),
                ms(b * 2 + db),
            ),
            None => ("-".into(), "-".into()),
        };
        let rss = c.peak_rss_kib.map_or("-".to_string(), |kib| {
            format!("{:.1} MB", kib as f64 / 1024.0)
        });
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            c.name,
            ms(c.median),
            ratio,
            target,
            rss
        ));
    }
    out.push_str(
        "\nCold starts and memory are of x86_64 release builds on this machine (arm64 cannot run here). \
         Target: peak RSS ≤ 32 MB per function.\n\n",
    );
    out.push_str("## Size and memory\n\n| function | release arm64 bootstrap |\n|---|---:|\n");
    for (name, size) in sizes {
        let size = size.map_or("not built (run `make package`)".to_string(), |s| {
            format!("{:.2} MB", s as f64 / 1_000_000.0)
        });
        out.push_str(&format!("| {name} | {size} |\n"));
    }
    out.push_str("\nTarget: each bootstrap ≤ 8 MB.\n\n");
    match rss_kib {
        Some(kib) => out.push_str(&format!(
            "Peak RSS of the `serve` process (every route, 16 connections, 16 concurrent requests) after {requests} requests: {:.1} MB.\n",
            kib as f64 / 1024.0
        )),
        None => out.push_str("Peak RSS: not available on this platform.\n"),
    }
    out
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or("?".into(), |kib| {
            format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    format!("{cores} cores ({cpu}), {mem} RAM, MariaDB on loopback")
}
