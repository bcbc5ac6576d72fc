//! Lambda entry point. Each run opens its own pool and closes it before returning: a frozen
//! instance holds no connection, so an idle cluster can pause between runs.

use domain::webhooks::schedule::Settings;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::queue::SqsQueue;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = platform::config::DatabaseConfig::load().await?;
    let url = std::env::var("WEBHOOK_QUEUE_URL").map_err(|_| "WEBHOOK_QUEUE_URL is not set")?;
    let queue = SqsQueue::from_env(url).await;
    let settings = Settings::default();
    let (config, queue, settings) = (&config, &queue, &settings);
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async move {
        let options = match &config.credentials {
            Some(source) => source.connect_options().await?,
            None => config.connect_options(),
        };
        let pool = platform::db::pool_with(options, config.max_connections);
        let outcome = webhook_relay::run(&pool, queue, settings).await;
        pool.close().await;
        outcome
    }))
    .await
}
