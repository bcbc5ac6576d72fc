//! The web layer: what turns HTTP requests into calls of the domain and its answers back
//! into HTTP. Errors become RFC 9457 problems here and only here; extractors turn every
//! rejection into the contract's status; bearer tokens become a domain `Caller`.

pub mod auth;
pub mod client;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod lambda;
pub mod router;
pub mod state;
pub mod tokens;
pub mod wake;
