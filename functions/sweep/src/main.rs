//! Lambda entry point. Only the database configuration is read: the sweep never needs the
//! token signing key.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = platform::config::DatabaseConfig::load().await?;
    let pool = platform::db::pool(&config);
    let pool = &pool;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        sweep::handle(pool, event).await
    }))
    .await
}
