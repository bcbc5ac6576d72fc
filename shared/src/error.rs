//! The one error type of the API and its rendering as RFC 9457 problem details.
//!
//! Every handler returns `Result<_, ApiError>`; this is the only place that decides
//! status codes, problem types and which details a client may see.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field, as listed in a 400's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is well-formed JSON but some fields break the contract.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// The request cannot be read at all (syntax, shape, bad query or path).
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Also the answer for another customer's resource: never reveal it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {detail}")]
    Conflict {
        kind: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// The database cannot be reached or is overloaded: the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The database refused the credentials (a rotated password): 503, and the credentials
    /// are re-read before the next request.
    #[error("database credentials rejected: {0}")]
    CredentialsRejected(String),
    /// A deadlock or lock timeout that outlived every retry: the client may retry.
    #[error("contention: {0}")]
    Contention(String),
    /// A bug. Logged in full, shown to the client as a bare 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Contention(_) | Self::CredentialsRejected(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem `type` slug: stable, machine-readable, documented in the OpenAPI spec.
    fn kind(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation-error",
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Conflict { kind, .. } => kind,
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::Unavailable(_) | Self::Contention(_) | Self::CredentialsRejected(_) => {
                "service-unavailable"
            }
            Self::Internal(_) => "internal-error",
        }
    }

    /// What the client is told. Internal and database details stay in the logs.
    fn detail(&self) -> String {
        match self {
            Self::Validation(_) => "The request has invalid fields.".into(),
            Self::BadRequest(detail) => detail.clone(),
            Self::Unauthorized(detail) | Self::Forbidden(detail) => (*detail).into(),
            Self::NotFound(what) => format!("The {what} does not exist."),
            Self::Conflict { detail, .. } => detail.clone(),
            Self::PayloadTooLarge => "The request body is larger than 1 MiB.".into(),
            Self::UnsupportedMediaType => "The request body must be application/json.".into(),
            Self::TooManyRequests { retry_after_secs } => {
                format!("Too many attempts; retry in {retry_after_secs} seconds.")
            }
            Self::Unavailable(_) | Self::Contention(_) | Self::CredentialsRejected(_) => {
                "The service is temporarily unavailable; retry shortly.".into()
            }
            Self::Internal(_) => "An unexpected error occurred.".into(),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

/// A problem+json response for a status that has no richer error (404/405 fallbacks).
pub fn problem_response(status: StatusCode, kind: &str, detail: String) -> Response {
    render(status, kind, detail, &[])
}

fn render(status: StatusCode, kind: &str, detail: String, errors: &[FieldError]) -> Response {
    let problem = Problem {
        kind: format!("/problems/{kind}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        errors,
    };
    let body = serde_json::to_vec(&problem).expect("a problem always serialises");
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body,
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(_) => tracing::error!(error = %self, "request failed"),
            Self::Unavailable(_) | Self::Contention(_) | Self::CredentialsRejected(_) => {
                tracing::warn!(error = %self, "database unavailable")
            }
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        let status = self.status();
        let errors: &[FieldError] = match &self {
            Self::Validation(errors) => errors,
            Self::Conflict { errors, .. } => errors,
            _ => &[],
        };
        let mut response = render(status, self.kind(), self.detail(), errors);
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unavailable(_) | Self::Contention(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::CredentialsRejected(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response.extensions_mut().insert(CredentialsRejected);
            }
            _ => {}
        }
        response
    }
}

/// Database errors: unreachable or overloaded is 503 (the client may retry and the pool
/// reconnects by itself); anything else is a bug. Constraint violations that carry meaning
/// (duplicate name, unknown reference) are classified by the domain module, not here.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_access_denied(&err) {
            Self::CredentialsRejected(err.to_string())
        } else if crate::db::is_retryable(&err) {
            Self::Contention(err.to_string())
        } else if crate::db::is_unavailable(&err) {
            Self::Unavailable(err.to_string())
        } else {
            Self::Internal(err.to_string())
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Marks a response whose request failed on refused database credentials, so that the
/// router can refresh them (see `http::finish`).
#[derive(Debug, Clone, Copy)]
pub struct CredentialsRejected;

impl crate::db::RetryableError for ApiError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Contention(_))
    }
}
