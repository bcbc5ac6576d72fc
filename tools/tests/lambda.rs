//! The Lambda entry point of every function: request ids, and events that must not crash it.

use lambda_http::{Context, LambdaEvent, Service};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, invoke_lambda, lambda_body, rest_api_event};

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_rest_api_request_id_is_used_too(pool: MySqlPool) {
    let app = TestApp::new(pool, products::router);
    let mut event = rest_api_event("Prod", "GET", "/products", json!({}), json!({}), None);
    event["requestContext"]["requestId"] = json!("rest-77");
    let response = invoke_lambda(app.router.clone(), event).await;
    assert_eq!(response["statusCode"], 200);
    assert_eq!(
        response["multiValueHeaders"]["x-request-id"],
        json!(["rest-77"])
    );
}

/// Hosts and schemes from which `lambda_http` cannot build a URL.
fn hostile_events() -> Vec<Value> {
    let mut events = Vec::new();
    for host in [
        "shop.10.0.0.999",
        "api.127.0.0.1",
        "a b",
        "x:99999999",
        "[::1",
    ] {
        events.push(http_api_event(
            "GET",
            "/products",
            "limit=1",
            json!({"host": host}),
            None,
        ));
    }
    let mut proto = http_api_event(
        "GET",
        "/products",
        "",
        json!({"x-forwarded-proto": "a b"}),
        None,
    );
    proto["headers"]["host"] = json!("shop.example.com");
    events.push(proto);
    let mut domain = http_api_event("GET", "/products", "", json!({}), None);
    domain["requestContext"]["domainName"] = json!("abc.execute-api.10.0.0.256");
    events.push(domain);
    let mut rest = rest_api_event(
        "Prod",
        "GET",
        "/products",
        json!({}),
        json!({"Host": "1.2.3.4.5"}),
        None,
    );
    rest["multiValueHeaders"]["Host"] = json!(["1.2.3.4.5"]);
    events.push(rest);
    events
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn hosts_that_do_not_parse_cannot_crash_a_function(pool: MySqlPool) {
    let app = TestApp::new(pool, products::router);
    for event in hostile_events() {
        let response = invoke_lambda(app.router.clone(), event.clone()).await;
        assert_eq!(response["statusCode"], 200, "{event}: {response}");
        assert!(lambda_body(&response)["items"].is_array());
    }
}

/// Why the entry point drops such hosts: `lambda_http` alone panics on them, and the entry
/// would then only have a 500 to give where the request deserves its answer.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn lambda_http_alone_panics_on_such_hosts(pool: MySqlPool) {
    let app = TestApp::new(pool, products::router);
    let event = http_api_event(
        "GET",
        "/products",
        "",
        json!({"host": "shop.10.0.0.999"}),
        None,
    );
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    let service = web::lambda::lambda_service(app.router.clone());
    // The adapter's future is not Send: run it on this thread, where a panic is caught.
    let local = tokio::task::LocalSet::new();
    let outcome = local
        .run_until(async move {
            tokio::task::spawn_local(async move {
                let mut adapter = lambda_http::Adapter::from(service);
                let _ = adapter
                    .call(LambdaEvent::new(request, Context::default()))
                    .await;
            })
            .await
        })
        .await;
    assert!(
        outcome.is_err_and(|e| e.is_panic()),
        "lambda_http still panics on it"
    );
}
