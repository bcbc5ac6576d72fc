//! What every function builds once per cold start and shares across requests.

use std::sync::Arc;

use sqlx::MySqlPool;

use crate::auth::TokenKeys;
use crate::config::{Config, ConfigError};

#[derive(Clone)]
pub struct AppState {
    pub pool: MySqlPool,
    pub tokens: Arc<TokenKeys>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            pool: crate::db::pool(&config.database),
            tokens: Arc::new(TokenKeys::new(
                config.jwt_secret.expose().as_bytes(),
                config.token_ttl,
            )),
        }
    }

    /// Configuration from the environment (and Secrets Manager on Lambda).
    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(&Config::load().await?))
    }
}
