//! The test kit of the function crates (a dev-dependency only): a real router over a real
//! database, real tokens, real API Gateway events through `lambda_http`, a proxy that cuts
//! the database off, and the shape of every concurrency test.

pub mod app;
pub mod events;
pub mod fixtures;
pub mod parallel;
pub mod proxy;

pub use app::{JWT_SECRET, TestApp, TestResponse, TestUser, expire_order, insert_user, state};
pub use events::{http_api_event, invoke_lambda, invoke_lambda_with, lambda_body, rest_api_event};
pub use fixtures::{insert_product, insert_variant, set_stock, stock_of};
pub use parallel::{in_parallel, until_the_stock_is_being_taken};
pub use proxy::TcpProxy;
