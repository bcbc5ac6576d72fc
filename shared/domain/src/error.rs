//! The domain's one error type: why a request was refused or failed, in the shop's terms.
//! The web layer turns it into an HTTP status and an RFC 9457 problem, in one place.

use serde::Serialize;

/// One invalid input field, as listed in a refusal's `errors`.
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

/// What a request conflicts with in the current state of the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    InsufficientStock,
    CartTotalTooLarge,
    EmptyCart,
    CartNotOrderable,
    DuplicateEmail,
    DuplicateCategory,
    DuplicateReview,
    InvalidStatusTransition,
    OrderNotDeletable,
    OrderHasPayments,
    OrderNotPayable,
    OrderExpired,
    Overpayment,
    AddressLimit,
    /// An account with orders the shop still owes goods on (paid, processing, shipped).
    AccountHasOpenOrders,
    /// The order's owner already holds as many pending orders as a customer may.
    TooManyPendingOrders,
    /// The cart already holds as many lines as an order may have.
    CartFull,
    /// An `Idempotency-Key` already used for another request.
    IdempotencyKeyReused,
    /// A discount code that cannot be used on this order (the reason is in the detail).
    DiscountNotApplicable,
    DuplicateDiscountCode,
    /// A usage limit below the uses already counted.
    UsageLimitBelowUses,
    /// Another variant already has the SKU.
    DuplicateSku,
    /// Another variant of the product already has the options.
    DuplicateOptions,
    /// A product's last variant cannot go without the product.
    LastVariant,
    /// The product has several variants: the request must name one.
    VariantRequired,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks the contract; each offending field is named.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// Also the answer for another customer's resource: never reveal it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller is known but may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A login with a wrong email or password (the same answer for both).
    #[error("wrong credentials")]
    WrongCredentials,
    /// The caller's account was deleted while the request ran: its token names no one now.
    #[error("the caller's account no longer exists")]
    AccountGone,
    #[error("conflict ({kind:?}): {detail}")]
    Conflict {
        kind: Conflict,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// Too many failed attempts for one account; try again after the window.
    #[error("throttled for {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The database cannot be reached or is overloaded: the client may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused the credentials (a rotated password): retry, and the
    /// credentials are read again first.
    #[error("database credentials rejected: {0}")]
    CredentialsRejected(String),
    /// A deadlock or lock timeout that outlived every retry: the client may retry.
    #[error("contention: {0}")]
    Contention(String),
    /// A bug. Logged in full; the client learns nothing of it.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn conflict(kind: Conflict, detail: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }
}

/// Database errors: unreachable or overloaded is a retryable unavailability; anything else
/// is a bug. Constraint violations that carry meaning (a duplicate name, an unknown
/// reference) are classified where they can happen, not here.
impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        use platform::db;
        if db::is_access_denied(&err) {
            Self::CredentialsRejected(err.to_string())
        } else if db::is_retryable(&err) {
            Self::Contention(err.to_string())
        } else if db::is_unavailable(&err) {
            Self::Unavailable(err.to_string())
        } else {
            Self::Internal(err.to_string())
        }
    }
}

impl From<platform::password::HashError> for Error {
    fn from(err: platform::password::HashError) -> Self {
        Self::internal(err)
    }
}

impl platform::db::RetryableError for Error {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Contention(_))
    }
}
