//! Cold starts: each function binary against a loopback stand-in for the Lambda runtime
//! API, timed from process start to its first response; its memory after many invocations.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use serde_json::{Value, json};

use crate::cpu::{Meter, PerOp};
use crate::fixture::Fixture;
use crate::{JWT_SECRET, WEBHOOK_KEY, workspace_root};

pub struct Cold {
    pub name: String,
    pub median: Duration,
    /// Peak RSS after [`INVOCATIONS_FOR_RSS`] invocations.
    pub peak_rss_kib: Option<u64>,
    /// The warm invocations after the first: what an instance bills once it is up.
    pub warm: Warm,
}

/// A warm invocation through the runtime API, averaged over [`INVOCATIONS_FOR_RSS`] - 1.
#[derive(Debug, Clone, Copy, Default)]
pub struct Warm {
    /// From one invocation's event handed out to the next's (the function answers, then
    /// asks for the next event).
    pub wall: Duration,
    /// CPU of the function's process and of the database server per invocation.
    pub cpu: PerOp,
}

pub const INVOCATIONS_FOR_RSS: usize = 10_000;
/// Cold starts per binary, the median kept: with five, the same binaries' medians moved by
/// half a millisecond between runs, as much as the profiles differ.
pub const COLD_SAMPLES: usize = 11;

/// The binaries whose cold starts are measured, in the order of the table: the bare
/// `lambda_http` binary, then every HTTP function ([`event_for`] gives each its request).
const FUNCTIONS: [&str; 11] = [
    "bare-lambda",
    "products",
    "categories",
    "users",
    "cart",
    "orders",
    "payments",
    "reviews",
    "discounts",
    "events",
    "docs",
];

/// The API Gateway event `name`'s cold start answers: a read its function serves.
fn event_for(name: &str, f: &Fixture, (token, admin_token): (&str, &str)) -> Value {
    let path = match name {
        "products" => format!("/products/{}", f.product_ids[0]),
        "categories" => "/categories".to_string(),
        "users" => format!("/users/{}", f.user_id),
        "cart" => format!("/users/{}/cart", f.user_id),
        "orders" => format!("/users/{}/orders", f.user_id),
        "payments" => format!("/orders/{}/payments", f.order_id),
        "reviews" => format!("/products/{}/reviews", f.product_ids[0]),
        "discounts" => "/discounts".to_string(),
        "events" => "/events".to_string(),
        "docs" => "/docs".to_string(),
        _ => "/".to_string(),
    };
    let admin_only = matches!(name, "discounts" | "events");
    http_api_event("GET", &path, if admin_only { admin_token } else { token })
}

/// Each function from process start to first response, through a loopback runtime API
/// (every one found in `bin_dir`), then its memory and warm invocations over a long run.
/// The cold starts are taken in turns across the binaries, one of each per round, so that
/// the machine's drift over the minutes they take moves every binary alike and the ratios
/// to the bare binary hold.
pub async fn cold_starts(
    bin_dir: &Path,
    url: &str,
    f: &Fixture,
    tokens: (&str, &str),
) -> Vec<Cold> {
    let found: Vec<(&str, PathBuf, Value)> = FUNCTIONS
        .into_iter()
        .map(|name| (name, bin_dir.join(name), event_for(name, f, tokens)))
        .filter(|(_, binary, _)| binary.exists())
        .collect();
    let mut times = vec![Vec::with_capacity(COLD_SAMPLES); found.len()];
    for _ in 0..COLD_SAMPLES {
        for ((_, binary, event), times) in found.iter().zip(&mut times) {
            times.push(
                run_function(binary, url, event.clone(), 1)
                    .await
                    .first_response,
            );
        }
    }
    let mut out = Vec::new();
    for ((name, binary, event), mut times) in found.into_iter().zip(times) {
        times.sort();
        let long_run = run_function(&binary, url, event, INVOCATIONS_FOR_RSS).await;
        out.push(Cold {
            name: name.to_string(),
            median: times[times.len() / 2],
            peak_rss_kib: long_run.peak_rss_kib,
            warm: long_run.warm,
        });
    }
    out
}

/// One cold start of the function `name` built into `bin_dir`: process start to its first
/// response.
pub async fn first_response(
    bin_dir: &Path,
    name: &str,
    url: &str,
    f: &Fixture,
    tokens: (&str, &str),
) -> Duration {
    let event = event_for(name, f, tokens);
    run_function(&bin_dir.join(name), url, event, 1)
        .await
        .first_response
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
    warm: Warm,
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
        .env("WEBHOOK_KEY", WEBHOOK_KEY)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start function binary");
    let at = tokio::time::timeout(Duration::from_secs(30), first_rx)
        .await
        .expect("first response")
        .unwrap();
    // Measured from the first answer on, so the start-up is not spread over the rest.
    let meter = Meter::start(child.id());
    tokio::time::timeout(Duration::from_secs(300), all_rx)
        .await
        .expect("every response")
        .unwrap();
    let warm_invocations = invocations.saturating_sub(1).max(1);
    let warm = Warm {
        wall: at.elapsed() / warm_invocations as u32,
        cpu: meter.per_op(warm_invocations as f64),
    };
    let peak_rss_kib = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    Run {
        first_response: at - started,
        peak_rss_kib,
        warm,
    }
}

pub async fn fresh_connection_round_trip(url: &str) -> Duration {
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

pub fn bootstrap_sizes() -> Vec<(String, Option<u64>)> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    // Every HTTP function, then the two that serve no route.
    FUNCTIONS[1..]
        .iter()
        .chain(&["migrate", "sweep"])
        .map(|f| {
            let size = std::fs::metadata(target.join("lambda").join(f).join("bootstrap"))
                .ok()
                .map(|m| m.len());
            (f.to_string(), size)
        })
        .collect()
}

pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
