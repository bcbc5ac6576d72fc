//! What every function builds once per cold start and shares across requests.

use sqlx::MySqlPool;
use std::sync::Arc;

use crate::tokens::Tokens;
use domain::settings::OrderLimits;
use platform::config::{Config, ConfigError, RotatingCredentials};

#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub tokens: Arc<Tokens>,
    /// Set on Lambda: re-read the database secret when the server refuses the password.
    pub credentials: Option<Arc<RotatingCredentials>>,
    /// What every new order is held to (its stock hold, the cap on pending orders).
    pub order_limits: OrderLimits,
}

impl AppState {
    pub fn new(config: &Config, order_limits: OrderLimits) -> Self {
        Self {
            pool: platform::db::pool(&config.database),
            tokens: Arc::new(Tokens::new(
                config.jwt_secret.expose().as_bytes(),
                config.token_ttl,
                config.jwt_source.clone(),
                config.secrets_refresh,
            )),
            credentials: config.database.credentials.clone(),
            order_limits,
        }
    }

    /// What every new order is held to (its stock hold, the cap on pending orders).
    pub fn order_limits(&self) -> OrderLimits {
        self.order_limits
    }

    /// Points the pool at the database secret's current credentials (after a rotation);
    /// connections made from now on use them.
    pub async fn refresh_credentials(&self) {
        let Some(source) = &self.credentials else {
            return;
        };
        match source.connect_options().await {
            Ok(options) => {
                self.pool.set_connect_options(options);
                tracing::warn!("database refused the credentials; re-read the secret");
            }
            Err(err) => tracing::error!(error = %err, "re-reading the database secret failed"),
        }
    }

    /// Configuration from the environment (and Secrets Manager on Lambda).
    pub async fn from_env() -> Result<Self, ConfigError> {
        crate::wake::init_from_env().await;
        Ok(Self::new(&Config::load().await?, OrderLimits::from_env()?))
    }
}
