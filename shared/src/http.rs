//! What every function's router shares: problem+json fallbacks, the body limit, and the
//! Lambda entry point.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use crate::error::{ApiError, CredentialsRejected, problem_response};
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// Completes a function's router: unknown paths are 404 and wrong methods 405 (with the
/// `Allow` header axum computes), both as problem+json; bodies over 1 MiB are 413.
pub fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound("resource").into_response() })
        .layer(axum::middleware::map_response(
            method_not_allowed_as_problem,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refresh_rejected_credentials,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// After a request the database refused for its credentials, re-read them, so that a
/// rotated password costs one 503 rather than every request until the instance recycles.
async fn refresh_rejected_credentials(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.extensions().get::<CredentialsRejected>().is_some() {
        state.refresh_credentials().await;
    }
    response
}

async fn method_not_allowed_as_problem(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let detail = match allow.as_ref().and_then(|v| v.to_str().ok()) {
        Some(methods) => format!("This resource supports only: {methods}."),
        None => "This method is not supported here.".into(),
    };
    let mut problem =
        problem_response(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", detail);
    if let Some(allow) = allow {
        problem
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow);
    }
    problem
}

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

/// 201 with `Location` and the new resource.
pub fn created<T: serde::Serialize>(location: String, body: T) -> Response {
    (
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response()
}

/// The OpenAPI description of the whole API (`GET /openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}
