//! Configuration, read once per cold start.
//!
//! Locally everything comes from the environment (`DATABASE_URL`, `JWT_SECRET`). On Lambda
//! the database credentials and the token signing key come from AWS Secrets Manager
//! (`DB_SECRET_ARN`, `JWT_SECRET_ARN`); `AWS_ENDPOINT_URL` is honoured, which is how the
//! tests reach a local Secrets Manager.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

/// Shortest accepted signing key: HS256 is only as strong as its key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("reading secret {arn}: {reason}")]
    Secret { arn: String, reason: String },
}

#[derive(Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub jwt_secret: Secret,
    pub token_ttl: Duration,
}

#[derive(Clone)]
pub struct DatabaseConfig {
    pub options: MySqlConnectOptions,
    pub max_connections: u32,
    /// Where fresh credentials come from after a rotation (Secrets Manager only).
    pub credentials: Option<Arc<RotatingCredentials>>,
}

/// The database secret, read again when the server refuses the credentials: RDS rotates
/// the master password on a schedule, and an instance must follow without a restart.
pub struct RotatingCredentials {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    /// The DB_* variables, captured at cold start.
    env: HashMap<&'static str, String>,
}

impl RotatingCredentials {
    pub async fn connect_options(&self) -> Result<MySqlConnectOptions, ConfigError> {
        let text = fetch_secret(&self.client, &self.arn).await?;
        let secret: RdsSecret = serde_json::from_str(&text).map_err(|e| ConfigError::Secret {
            arn: self.arn.clone(),
            reason: format!("not an RDS credentials JSON: {e}"),
        })?;
        rds_options(secret, &|name| self.env.get(name).cloned())
    }
}

impl DatabaseConfig {
    pub fn connect_options(&self) -> MySqlConnectOptions {
        self.options.clone()
    }
}

/// A secret value that never shows up in logs or debug output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The JSON that RDS and Aurora keep in Secrets Manager. RDS-managed master secrets hold
/// only username and password; host, port and database then come from the environment.
#[derive(Deserialize)]
struct RdsSecret {
    username: String,
    password: String,
    host: Option<String>,
    port: Option<u16>,
    dbname: Option<String>,
}

impl Config {
    /// Reads the process environment (and Secrets Manager when an ARN is given).
    pub async fn load() -> Result<Config, ConfigError> {
        Self::load_from(|name| std::env::var(name).ok()).await
    }

    /// Reads configuration through `var`, so tests can supply their own environment.
    pub async fn load_from(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let secrets = match (var("DB_SECRET_ARN"), var("JWT_SECRET_ARN")) {
            (None, None) => None,
            _ => Some(secrets_client(&var).await),
        };

        let max_connections = match var("DB_MAX_CONNECTIONS") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid {
                    name: "DB_MAX_CONNECTIONS",
                    reason: "must be a positive integer".into(),
                })?,
            None => 2,
        };
        let (options, credentials) = match (var("DB_SECRET_ARN"), &secrets) {
            (Some(arn), Some(client)) => {
                let env = DB_VARIABLES
                    .iter()
                    .filter_map(|name| var(name).map(|value| (*name, value)))
                    .collect();
                let source = RotatingCredentials {
                    client: client.clone(),
                    arn,
                    env,
                };
                (source.connect_options().await?, Some(Arc::new(source)))
            }
            _ => {
                let url = var("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?;
                let options =
                    crate::db::options_from_url(&url).map_err(|e| ConfigError::Invalid {
                        name: "DATABASE_URL",
                        reason: e.to_string(),
                    })?;
                (options, None)
            }
        };

        let jwt_secret = match (var("JWT_SECRET_ARN"), &secrets) {
            (Some(arn), Some(client)) => fetch_secret(client, &arn).await?,
            _ => var("JWT_SECRET").ok_or(ConfigError::Missing("JWT_SECRET"))?,
        };
        if jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
            });
        }

        let token_ttl = match var("TOKEN_TTL_SECONDS") {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (60..=86_400).contains(s))
                .map(Duration::from_secs)
                .ok_or(ConfigError::Invalid {
                    name: "TOKEN_TTL_SECONDS",
                    reason: "must be between 60 and 86400".into(),
                })?,
            None => Duration::from_secs(3600),
        };

        Ok(Config {
            database: DatabaseConfig {
                options,
                max_connections,
                credentials,
            },
            jwt_secret: Secret(jwt_secret),
            token_ttl,
        })
    }
}

/// The variables that complete or override an RDS secret.
const DB_VARIABLES: [&str; 5] = ["DB_HOST", "DB_PORT", "DB_NAME", "DB_SSL_MODE", "DB_SSL_CA"];

fn rds_options(
    secret: RdsSecret,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<MySqlConnectOptions, ConfigError> {
    let host = var("DB_HOST")
        .or(secret.host)
        .ok_or(ConfigError::Missing("DB_HOST"))?;
    let port = match var("DB_PORT") {
        Some(p) => p.parse().map_err(|_| ConfigError::Invalid {
            name: "DB_PORT",
            reason: "must be a port number".into(),
        })?,
        None => secret.port.unwrap_or(3306),
    };
    let database = var("DB_NAME")
        .or(secret.dbname)
        .ok_or(ConfigError::Missing("DB_NAME"))?;
    // Traffic stays inside the VPC; `required` encrypts it. `verify_identity` additionally
    // needs the RDS CA bundle, given by DB_SSL_CA.
    let ssl_mode = match var("DB_SSL_MODE").as_deref().unwrap_or("required") {
        "disabled" => MySqlSslMode::Disabled,
        "preferred" => MySqlSslMode::Preferred,
        "required" => MySqlSslMode::Required,
        "verify_ca" => MySqlSslMode::VerifyCa,
        "verify_identity" => MySqlSslMode::VerifyIdentity,
        other => {
            return Err(ConfigError::Invalid {
                name: "DB_SSL_MODE",
                reason: format!("unknown mode {other:?}"),
            });
        }
    };
    let mut options = MySqlConnectOptions::new()
        .host(&host)
        .port(port)
        .username(&secret.username)
        .database(&database)
        .ssl_mode(ssl_mode)
        .timezone(Some(String::from("+00:00")));
    if !secret.password.is_empty() {
        options = options.password(&secret.password);
    }
    if let Some(ca) = var("DB_SSL_CA") {
        options = options.ssl_ca(ca);
    }
    Ok(options)
}

async fn secrets_client(var: &impl Fn(&str) -> Option<String>) -> aws_sdk_secretsmanager::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = var("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    aws_sdk_secretsmanager::Client::new(&loader.load().await)
}

async fn fetch_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<String, ConfigError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| ConfigError::Secret {
            arn: arn.to_string(),
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
        })?;
    output
        .secret_string()
        .map(str::to_string)
        .ok_or_else(|| ConfigError::Secret {
            arn: arn.to_string(),
            reason: "has no string value".into(),
        })
}
