//! API Gateway events, and sending them through `lambda_http` as the Lambda runtime does.

use axum::Router;
use lambda_http::{Context, LambdaEvent};
use serde_json::{Value, json};

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

/// Sends an API Gateway event through the functions' Lambda entry point exactly as the
/// Lambda runtime does, and returns the response JSON the runtime would post back.
pub async fn invoke_lambda(router: Router, event: Value) -> Value {
    invoke_lambda_with(router, event, Context::default()).await
}

/// [`invoke_lambda`] with the invocation's own context (its request id, say).
pub async fn invoke_lambda_with(router: Router, event: Value, context: Context) -> Value {
    let service = web::lambda::lambda_service(router);
    let response = web::lambda::handle(service, LambdaEvent::new(event, context))
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
