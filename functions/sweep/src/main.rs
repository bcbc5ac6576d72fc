//! Lambda entry point. Only the database configuration is read: the sweep never needs the
//! token signing key.
//!
//! Each run that has work opens its own pool and closes it before returning: a frozen
//! instance then holds no connection, and an idle cluster counts none from the sweep.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = platform::config::DatabaseConfig::load().await?;
    let sweeper = sweep::Sweeper::from_env()?;
    let (config, sweeper) = (&config, &sweeper);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        if let Some(skipped) = sweeper.skip(&event.payload) {
            return Ok(skipped);
        }
        // A rotated password: the secret is read again for this run, not the cold start's.
        let options = match &config.credentials {
            Some(source) => source.connect_options().await?,
            None => config.connect_options(),
        };
        let pool = platform::db::pool_with(options, config.max_connections);
        let outcome = sweeper.sweep(&pool, event).await;
        pool.close().await;
        outcome
    }))
    .await
}
