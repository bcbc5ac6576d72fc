//! Lambda entry point: the pool, the sealing key (Secrets Manager) and the guarded client
//! are built once per cold start.

use std::sync::Arc;

use domain::webhooks::delivery::Deliverer;
use domain::webhooks::schedule::Settings;
use lambda_runtime::{LambdaEvent, service_fn};
use platform::config::ConfigError;
use platform::crypto::SealingKey;
use platform::outbound::{Outbound, Policy};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let var = |name: &str| std::env::var(name).ok();
    let config = platform::config::DatabaseConfig::load().await?;
    let secret = platform::aws::webhook_key(&var).await?;
    let sealing = SealingKey::from_secret(&secret).map_err(|err| ConfigError::Invalid {
        name: "WEBHOOK_KEY",
        reason: err.to_string(),
    })?;
    let deliverer = Deliverer {
        pool: platform::db::pool(&config),
        outbound: Outbound::new(Policy::from_env(&var)?),
        sealing: Arc::new(sealing),
        settings: Arc::new(Settings::default()),
    };
    let deliverer = &deliverer;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(webhook_delivery::handle(deliverer, &event.payload).await)
    }))
    .await
}
