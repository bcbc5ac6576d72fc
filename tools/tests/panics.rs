//! No request ends the process that serves it: a panicking handler answers a 500 problem
//! and the next request is served, through the Lambda entry point and through the `serve`
//! host alike; release builds unwind; and the crafted cursor that used to panic is a 400
//! for the real `serve` binary, which goes on serving.

#[path = "common/raw_http.rs"]
mod raw_http;

use std::net::SocketAddr;
use std::process::Stdio;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, invoke_lambda, lambda_body, rest_api_event};
use tokio::io::{AsyncBufReadExt, BufReader};
use web::state::AppState;

/// The products function's routes plus one that panics, finished like every router.
fn with_a_panicking_route(state: AppState) -> Router {
    let routes = Router::new()
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("a secret detail that must stay in the log");
                }
                "unreachable"
            }),
        )
        .merge(products::routes());
    web::router::finish(routes, state)
}

#[track_caller]
fn assert_internal_problem(status: &Value, content_type: Option<&str>, body: &Value) {
    assert_eq!(status, 500);
    assert_eq!(content_type, Some(web::error::PROBLEM_JSON));
    assert_eq!(body["type"], "/problems/internal-error");
    assert_eq!(body["status"], 500);
    assert!(
        !body.to_string().contains("secret detail"),
        "the panic message is logged, never sent: {body}"
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_panic_through_the_lambda_entry_is_a_500_and_the_next_event_is_served(pool: MySqlPool) {
    let app = TestApp::new(pool, with_a_panicking_route);
    for _ in 0..2 {
        let response = invoke_lambda(
            app.router.clone(),
            http_api_event("GET", "/boom", "", json!({}), None),
        )
        .await;
        assert_internal_problem(
            &response["statusCode"],
            response["headers"]["content-type"].as_str(),
            &lambda_body(&response),
        );
        let next = invoke_lambda(
            app.router.clone(),
            http_api_event("GET", "/products", "", json!({}), None),
        )
        .await;
        assert_eq!(next["statusCode"], 200, "{next}");
    }
    // A REST API event, whose answer has another shape.
    let rest = invoke_lambda(
        app.router.clone(),
        rest_api_event("Prod", "GET", "/boom", json!({}), json!({}), None),
    )
    .await;
    assert_internal_problem(
        &rest["statusCode"],
        rest["multiValueHeaders"]["content-type"][0].as_str(),
        &lambda_body(&rest),
    );
}

/// `lambda_http` itself panics on events it cannot turn into a request. Query bytes a URL
/// may not hold raw are encoded first; anything else left is caught at the entry and
/// answered like a panicking handler.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn events_lambda_http_cannot_convert_are_answered_too(pool: MySqlPool) {
    let app = TestApp::new(pool, products::router);
    let raw = http_api_event("GET", "/products", "q=<a \"b\">#c&limit=2", json!({}), None);
    let response = invoke_lambda(app.router.clone(), raw).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(lambda_body(&response)["items"], json!([]));

    let mut broken = http_api_event("GET", "/products", "", json!({}), None);
    broken["rawPath"] = json!(":99999");
    broken["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("domainName");
    let response = invoke_lambda(app.router.clone(), broken).await;
    assert_internal_problem(
        &response["statusCode"],
        response["headers"]["content-type"].as_str(),
        &lambda_body(&response),
    );
    let next = invoke_lambda(
        app.router.clone(),
        http_api_event("GET", "/products", "", json!({}), None),
    )
    .await;
    assert_eq!(next["statusCode"], 200);
}

async fn start_serving(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tools::serve::serve(listener, router));
    addr
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_panic_in_the_serve_host_is_a_500_and_the_next_request_is_served(pool: MySqlPool) {
    let server = start_serving(with_a_panicking_route(testkit::state(pool))).await;
    for _ in 0..2 {
        let reply = raw_http::get(server, "/boom").await;
        assert_internal_problem(
            &json!(reply.status),
            reply.header("content-type"),
            &reply.body,
        );
        let next = raw_http::get(server, "/products").await;
        assert_eq!(next.status, 200, "{next:?}");
    }
}

/// The release profile unwinds: with `abort`, no layer could catch a panic and a single
/// request would end the instance (or the whole `serve` process).
#[test]
fn release_builds_unwind() {
    let manifest = include_str!("../../Cargo.toml");
    let release: Vec<&str> = manifest
        .split("\n[")
        .find(|section| section.starts_with("profile.release]"))
        .expect("a [profile.release] section")
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .collect();
    assert!(
        release.contains(&r#"panic = "unwind""#),
        "[profile.release] must say panic = \"unwind\": {release:?}"
    );
}

/// `DATABASE_URL` (the tests' registry database) pointed at this test's own database.
async fn database_url(pool: &MySqlPool) -> String {
    let name: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .unwrap();
    let registry = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (base, query) = match registry.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (registry.as_str(), String::new()),
    };
    let server = base.rsplit_once('/').expect("a database path").0;
    format!("{server}/{name}{query}")
}

/// The crafted cursor of the report, sent to the real `serve` binary: a 400 naming
/// `cursor`, and the process still serves.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_serve_binary_refuses_the_crafted_cursor_and_keeps_serving(pool: MySqlPool) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_serve"))
        .env("DATABASE_URL", database_url(&pool).await)
        .env("JWT_SECRET", testkit::JWT_SECRET)
        .env("WEBHOOK_KEY", "test-only-webhook-sealing-key-0123456789")
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("serve says where it listens");
    let server: SocketAddr = line
        .strip_prefix("listening on http://")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));

    let crafted = "eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjoiLTAwMDEtMDEtMDEgMDA6MDA6MDAuMDAwMDAwIiwiaSI6MX0";
    for path in [
        format!("/products?cursor={crafted}"),
        format!("/products?sort=-created_at&cursor={crafted}"),
    ] {
        let reply = raw_http::get(server, &path).await;
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        assert_eq!(reply.body["errors"][0]["field"], "cursor");
        assert_eq!(
            raw_http::get(server, "/products").await.status,
            200,
            "the process still serves"
        );
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve is still running"
    );
    child.kill().await.unwrap();
}
