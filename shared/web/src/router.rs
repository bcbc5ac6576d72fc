//! What every function's router shares: problem+json fallbacks, the body limit, following a
//! rotated database password, and the responses several functions give.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::error::{ApiError, CredentialsRejected, problem_response};
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// The response header that tells the client which request it was: API Gateway's request
/// id, the one every log line of the request carries, so a report can be matched to logs.
pub const REQUEST_ID: &str = "x-request-id";

/// Completes a function's router: unknown paths are 404 and wrong methods 405 (with the
/// `Allow` header axum computes), both as problem+json; bodies over 1 MiB are 413; a panic
/// is a 500 and the instance keeps serving; every request is logged under its request id,
/// which the response carries back.
pub fn finish(routes: Router<AppState>, state: AppState) -> Router {
    finish_stateless(
        routes
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                refresh_rejected_credentials,
            ))
            .layer(axum::middleware::from_fn(crate::wake::wake_relay))
            .with_state(state),
    )
}

/// [`finish`] for a function that needs no state (no database, no secrets).
pub fn finish_stateless(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::not_found("resource").into_response() })
        .layer(axum::middleware::map_response(
            method_not_allowed_as_problem,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_as_problem))
        .layer(axum::middleware::from_fn(with_request_id))
}

/// A panic is a bug like any other internal error, and answers as one: a 500 problem whose
/// message stays in the log, under the request's id. Release builds unwind
/// (`panic = "unwind"`), so the instance survives to serve the next request.
fn panic_as_problem(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic_message(&*panic);
    ApiError::internal(format!("the handler panicked: {message}")).into_response()
}

/// The text a panic was raised with, for the log.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

async fn with_request_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = request_id(&request);
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// API Gateway's id for the request; else Lambda's for the invocation; else (a plain HTTP
/// host such as `serve`) one made here.
fn request_id(request: &axum::extract::Request) -> String {
    let gateway = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    gateway
        .or_else(|| {
            request
                .lambda_context_ref()
                .map(|ctx| ctx.request_id.clone())
        })
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("{nanos:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
        })
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
pub const OPENAPI: &str = include_str!("../../../openapi.json");

pub async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}
