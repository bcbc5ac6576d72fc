//! Everything the shop API's functions share: configuration, the database pool, auth,
//! errors, request extraction, and one domain module per resource holding its SQL.
//!
//! Function crates stay thin: they route HTTP requests to the functions here.

pub mod auth;
pub mod cart;
pub mod categories;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod housekeeping;
pub mod http;
pub mod idempotency;
pub mod money;
pub mod orders;
pub mod page;
pub mod password;
pub mod payments;
pub mod products;
pub mod reviews;
pub mod seed;
pub mod state;
pub mod stock;
pub mod time;
pub mod users;
pub mod validate;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use error::{ApiError, ApiResult};
pub use state::AppState;

/// The migrations, embedded so that the deploy-time `migrate` function and the local
/// tools apply exactly what the tests ran against.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
