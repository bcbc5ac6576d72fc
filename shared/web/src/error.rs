//! The API's one error type and its rendering as RFC 9457 problem details.
//!
//! Handlers return `Result<_, ApiError>`; domain refusals arrive through `?`. This is the
//! only place that decides status codes, problem types and which details a client may see.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::error::{Conflict, Error, FieldError};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal or failure of the shop's own rules.
    #[error(transparent)]
    Domain(#[from] Error),
    /// The request cannot be read at all (syntax, shape).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No usable access token: missing, malformed, expired, forged or revoked.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::Domain(err.into())
    }
}

impl ApiError {
    /// A 400 naming one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Domain(Error::invalid(field, message))
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Domain(Error::internal(err))
    }

    /// The 404 of an unknown path or of a resource that does not exist.
    pub fn not_found(what: &'static str) -> Self {
        Self::Domain(Error::NotFound(what))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Domain(err) => match err {
                Error::Invalid(_) => StatusCode::BAD_REQUEST,
                Error::WrongCredentials | Error::AccountGone => StatusCode::UNAUTHORIZED,
                Error::Forbidden(_) => StatusCode::FORBIDDEN,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::Conflict { .. } => StatusCode::CONFLICT,
                Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                Error::Unavailable(_) | Error::Contention(_) | Error::CredentialsRejected(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The problem `type` slug: stable, machine-readable, documented in the OpenAPI spec.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Domain(err) => match err {
                Error::Invalid(_) => "validation-error",
                Error::WrongCredentials | Error::AccountGone => "unauthorized",
                Error::Forbidden(_) => "forbidden",
                Error::NotFound(_) => "not-found",
                Error::Conflict { kind, .. } => conflict_kind(*kind),
                Error::Throttled { .. } => "too-many-requests",
                Error::Unavailable(_) | Error::Contention(_) | Error::CredentialsRejected(_) => {
                    "service-unavailable"
                }
                Error::Internal(_) => "internal-error",
            },
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized(_) => "unauthorized",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
        }
    }

    /// What the client is told. Internal and database details stay in the logs.
    fn detail(&self) -> String {
        match self {
            Self::Domain(err) => match err {
                Error::Invalid(_) => "The request has invalid fields.".into(),
                Error::WrongCredentials => "The email or password is wrong.".into(),
                Error::AccountGone => "The access token has been revoked.".into(),
                Error::Forbidden(detail) => (*detail).into(),
                Error::NotFound(what) => format!("The {what} does not exist."),
                Error::Conflict { detail, .. } => detail.clone(),
                Error::Throttled { retry_after_secs } => {
                    format!("Too many attempts; retry in {retry_after_secs} seconds.")
                }
                Error::Unavailable(_) | Error::Contention(_) | Error::CredentialsRejected(_) => {
                    "The service is temporarily unavailable; retry shortly.".into()
                }
                Error::Internal(_) => "An unexpected error occurred.".into(),
            },
            Self::BadRequest(detail) => detail.clone(),
            Self::Unauthorized(detail) => (*detail).into(),
            Self::PayloadTooLarge => "The request body is larger than 1 MiB.".into(),
            Self::UnsupportedMediaType => "The request body must be application/json.".into(),
        }
    }

    fn errors(&self) -> &[FieldError] {
        match self {
            Self::Domain(Error::Invalid(errors) | Error::Conflict { errors, .. }) => errors,
            _ => &[],
        }
    }
}

fn conflict_kind(kind: Conflict) -> &'static str {
    match kind {
        Conflict::InsufficientStock => "insufficient-stock",
        Conflict::CartTotalTooLarge => "cart-total-too-large",
        Conflict::EmptyCart => "empty-cart",
        Conflict::CartNotOrderable => "cart-not-orderable",
        Conflict::DuplicateEmail => "duplicate-email",
        Conflict::DuplicateCategory => "duplicate-category",
        Conflict::DuplicateReview => "duplicate-review",
        Conflict::InvalidStatusTransition => "invalid-status-transition",
        Conflict::OrderNotDeletable => "order-not-deletable",
        Conflict::OrderHasPayments => "order-has-payments",
        Conflict::OrderNotPayable => "order-not-payable",
        Conflict::OrderExpired => "order-expired",
        Conflict::Overpayment => "overpayment",
        Conflict::AddressLimit => "address-limit",
        Conflict::AccountHasOpenOrders => "account-has-open-orders",
        Conflict::TooManyPendingOrders => "too-many-pending-orders",
        Conflict::CartFull => "cart-full",
        Conflict::IdempotencyKeyReused => "idempotency-key-reused",
        Conflict::DiscountNotApplicable => "discount-not-applicable",
        Conflict::DuplicateDiscountCode => "duplicate-discount-code",
        Conflict::UsageLimitBelowUses => "usage-limit-below-uses",
        Conflict::DuplicateSku => "duplicate-sku",
        Conflict::DuplicateOptions => "duplicate-options",
        Conflict::LastVariant => "last-variant",
        Conflict::VariantRequired => "variant-required",
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

/// Marks a response whose request failed on refused database credentials, so that the
/// router can read them again (see `router::finish`).
#[derive(Debug, Clone, Copy)]
pub struct CredentialsRejected;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            match &self {
                Self::Domain(Error::Internal(_)) => {
                    tracing::error!(error = %self, "request failed")
                }
                _ => tracing::warn!(error = %self, "database unavailable"),
            }
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let mut response = render(status, self.kind(), self.detail(), self.errors());
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) | Self::Domain(Error::WrongCredentials | Error::AccountGone) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Domain(Error::Throttled { retry_after_secs }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Domain(Error::Unavailable(_) | Error::Contention(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Domain(Error::CredentialsRejected(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response.extensions_mut().insert(CredentialsRejected);
            }
            _ => {}
        }
        response
    }
}

/// Lets a transaction retried on deadlock tell a deadlock apart from a refusal.
impl platform::db::RetryableError for ApiError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Domain(Error::Contention(_)))
    }
}
