//! The Lambda entry point: a function's router behind `lambda_http`.

use axum::Router;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// The service Lambda runs: the router behind a step that removes a REST API stage
/// (`/Prod/products` → `/products`), so one build serves HTTP APIs, REST APIs and custom
/// domains alike.
pub fn lambda_service(
    router: Router,
) -> tower::util::MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request> {
    tower::util::MapRequest::new(router, strip_stage as fn(_) -> _)
}

/// Runs a function's router on the Lambda runtime until the instance is shut down.
pub async fn run_lambda(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_service(router)).await
}

fn strip_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return request;
    };
    let prefix = format!("/{stage}");
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix(&prefix) else {
        return request;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return request;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(new_uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = new_uri;
        }
    }
    request
}

/// Logging for a function: JSON on Lambda (`AWS_LAMBDA_LOG_FORMAT`), text locally.
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}
