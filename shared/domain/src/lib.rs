//! The domain layer: the shop's types, rules and SQL, one module per resource. It never
//! sees HTTP (no axum, no Lambda): functions take plain values and a [`caller::Caller`],
//! and refuse with an [`error::Error`] that the web layer maps to a status, once.

pub mod addresses;
pub mod caller;
pub mod cart;
pub mod categories;
pub mod discounts;
pub mod error;
pub mod events;
pub mod housekeeping;
pub mod id;
pub mod idempotency;
pub mod money;
pub mod orders;
pub mod page;
pub mod payments;
pub mod products;
pub mod reviews;
pub mod role;
pub mod schema;
pub mod settings;
mod sql;
pub mod stock;
pub mod time;
pub mod users;
pub mod validate;
pub mod variants;
pub mod webhooks;

pub use schema::MIGRATOR;
