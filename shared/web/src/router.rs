//! What every function's router shares: problem+json fallbacks, the body limit, following a
//! rotated database password, and the responses several functions give.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use domain::error::Error;

use crate::error::{ApiError, CredentialsRejected, problem_response};
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// Completes a function's router: unknown paths are 404 and wrong methods 405 (with the
/// `Allow` header axum computes), both as problem+json; bodies over 1 MiB are 413.
pub fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(|| async { ApiError::Domain(Error::NotFound("resource")).into_response() })
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
