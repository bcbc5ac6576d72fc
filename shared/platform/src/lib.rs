//! The platform layer: configuration and secrets, the database pool and its transactions,
//! password hashing, sealed secrets, queues, and outgoing HTTP to receivers outside. It
//! knows nothing of the shop's rules nor of serving HTTP; the domain layer builds on it and
//! the web layer on both.

pub mod aws;
pub mod config;
pub mod crypto;
pub mod db;
pub mod deadline;
pub mod outbound;
pub mod password;
pub mod queue;
pub mod secret;
pub mod webhook_signature;
