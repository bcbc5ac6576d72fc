//! The reference page through the real Lambda event path (API Gateway HTTP API events).
//! That it renders every operation in a browser is checked by `.ci/docs-browser-check`.

use serde_json::{Value, json};
use testkit::{http_api_event, invoke_lambda, lambda_body};

async fn get(path: &str) -> Value {
    invoke_lambda(
        docs::router(),
        http_api_event("GET", path, "", json!({}), None),
    )
    .await
}

fn header<'a>(response: &'a Value, name: &str) -> &'a str {
    response["headers"][name].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_page_loads_only_its_own_files() {
    let page = get("/docs").await;
    assert_eq!(page["statusCode"], 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self';"),
        "{csp}"
    );
    let html = page["body"].as_str().unwrap();
    for needed in [
        "docs/swagger-ui.css",
        "docs/swagger-ui-bundle.js",
        "docs/init.js",
    ] {
        assert!(html.contains(needed), "{needed} missing from the page");
    }
    assert!(
        !html.contains("http"),
        "no absolute URL: the page works offline, under any prefix"
    );

    let init = get("/docs/init.js").await;
    assert_eq!(init["statusCode"], 200);
    let script = init["body"].as_str().unwrap();
    assert!(script.contains("url: \"openapi.json\"") && script.contains("validatorUrl: null"));
}

#[tokio::test]
async fn the_viewer_is_served_from_the_function_itself() {
    for (asset, kind, at_least) in [
        ("swagger-ui-bundle.js", "text/javascript", 1_000_000),
        ("swagger-ui.css", "text/css", 100_000),
    ] {
        let response = get(&format!("/docs/{asset}")).await;
        assert_eq!(response["statusCode"], 200, "{asset}");
        assert_eq!(header(&response, "content-type"), kind);
        assert_eq!(header(&response, "cache-control"), "public, max-age=3600");
        assert!(
            response["body"].as_str().unwrap().len() > at_least,
            "{asset} is the real file"
        );
    }
}

#[tokio::test]
async fn anything_else_is_a_problem() {
    for path in [
        "/docs/index.html",
        "/docs/..%2Fopenapi.json",
        "/docs/",
        "/docs/a/b",
    ] {
        let response = get(path).await;
        assert_eq!(response["statusCode"], 404, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
        assert_eq!(lambda_body(&response)["type"], "/problems/not-found");
    }
    let post = invoke_lambda(
        docs::router(),
        http_api_event("POST", "/docs", "", json!({}), Some("{}")),
    )
    .await;
    assert_eq!(post["statusCode"], 405);
    assert_eq!(header(&post, "allow"), "GET,HEAD");
}

#[test]
fn server_descriptions_are_plain_text() {
    // The page lists the servers in a drop-down, which shows their descriptions as they are:
    // Markdown there would be seen as backticks and asterisks.
    let spec: Value = serde_json::from_str(web::router::OPENAPI).unwrap();
    let servers = spec["servers"].as_array().expect("servers");
    assert!(!servers.is_empty());
    for server in servers {
        let description = server["description"].as_str().expect("a description");
        assert!(!description.is_empty());
        assert!(
            !description.contains(['`', '*', '_', '[', ']', '<', '>', '#']),
            "Markdown in a server description: {description}"
        );
    }
}
