//! The platform layer: configuration and secrets, the database pool and its transactions,
//! password hashing. It knows nothing of the shop's rules or of HTTP; the domain layer
//! builds on it and the web layer on both.

pub mod config;
pub mod db;
pub mod deadline;
pub mod password;
