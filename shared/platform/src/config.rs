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

use crate::aws::{fetch_secret, secrets_client};
pub use crate::secret::{ConfigError, Secret};

/// The Amazon RDS certificate authorities (`DB_SSL_CA=rds`), shipped inside every function
/// so that verifying an Aurora or RDS endpoint needs no file on disk. See
/// `.ci/rds-ca-bundle` for where they come from.
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-ca.pem");

/// Shortest accepted signing key: HS256 is only as strong as its key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub jwt_secret: Secret,
    /// Where the signing key is read again (`JWT_SECRET_ARN`), so that a rotated key
    /// reaches instances that are already running.
    pub jwt_source: Option<SigningKeySource>,
    /// How often secrets kept in memory are read again (`SECRETS_REFRESH_SECONDS`).
    pub secrets_refresh: Duration,
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
        let database = DatabaseConfig::read(&var, secrets.as_ref()).await?;

        let (jwt_secret, jwt_source) = match (var("JWT_SECRET_ARN"), &secrets) {
            (Some(arn), Some(client)) => {
                let source = SigningKeySource {
                    client: client.clone(),
                    arn,
                };
                (source.read().await?, Some(source))
            }
            _ => (
                check_signing_key(var("JWT_SECRET").ok_or(ConfigError::Missing("JWT_SECRET"))?)?,
                None,
            ),
        };
        let secrets_refresh =
            seconds(&var, "SECRETS_REFRESH_SECONDS", 1, 86_400)?.unwrap_or(DEFAULT_SECRETS_REFRESH);

        let token_ttl =
            seconds(&var, "TOKEN_TTL_SECONDS", 60, 86_400)?.unwrap_or(Duration::from_secs(3600));

        Ok(Config {
            database,
            jwt_secret,
            jwt_source,
            secrets_refresh,
            token_ttl,
        })
    }
}

/// Secrets kept in memory are read again this often by default: a rotated signing key is
/// in use everywhere within five minutes, without a deploy.
pub const DEFAULT_SECRETS_REFRESH: Duration = Duration::from_secs(300);

/// A token signing key, refused when it is too short to be safe.
fn check_signing_key(key: String) -> Result<Secret, ConfigError> {
    if key.len() < MIN_JWT_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name: "JWT_SECRET",
            reason: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
        });
    }
    Ok(Secret::new(key))
}

/// The signing key in Secrets Manager, read again whenever its holder wants the current value.
#[derive(Clone)]
pub struct SigningKeySource {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
}

impl SigningKeySource {
    /// The current value of the signing key this source names.
    pub async fn read(&self) -> Result<Secret, ConfigError> {
        check_signing_key(fetch_secret(&self.client, &self.arn).await?)
    }
}

/// A whole number of seconds within `min..=max`, or `None` when the variable is unset.
pub fn seconds(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = var(name) else {
        return Ok(None);
    };
    value
        .parse::<u64>()
        .ok()
        .filter(|s| (min..=max).contains(s))
        .map(|s| Some(Duration::from_secs(s)))
        .ok_or(ConfigError::Invalid {
            name,
            reason: format!("must be a whole number of seconds between {min} and {max}"),
        })
}

impl DatabaseConfig {
    /// Only the database: for the functions that need nothing else (the migrations and
    /// the scheduled sweep), which therefore never read the token signing key.
    pub async fn load() -> Result<DatabaseConfig, ConfigError> {
        let var = |name: &str| std::env::var(name).ok();
        let secrets = match var("DB_SECRET_ARN") {
            Some(_) => Some(secrets_client(&var).await),
            None => None,
        };
        Self::read(&var, secrets.as_ref()).await
    }

    async fn read(
        var: &impl Fn(&str) -> Option<String>,
        secrets: Option<&aws_sdk_secretsmanager::Client>,
    ) -> Result<DatabaseConfig, ConfigError> {
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
        let (options, credentials) = match (var("DB_SECRET_ARN"), secrets) {
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
                let options = options_from_url(&url).map_err(|e| ConfigError::Invalid {
                    name: "DATABASE_URL",
                    reason: e.to_string(),
                })?;
                (options, None)
            }
        };
        Ok(DatabaseConfig {
            options,
            max_connections,
            credentials,
        })
    }
}

/// Connect options from a URL, with the session pinned to UTC (DATETIME columns hold UTC).
pub fn options_from_url(url: &str) -> Result<MySqlConnectOptions, sqlx::Error> {
    url.parse::<MySqlConnectOptions>()
        .map(|o| o.timezone(Some(String::from("+00:00"))))
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
    // `required` encrypts; `verify_identity` also checks the server's certificate against
    // DB_SSL_CA and its name against the host, so nothing on the path can pose as the
    // database.
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
    options = match var("DB_SSL_CA").as_deref() {
        // The public roots only: an RDS Proxy's certificate comes from ACM.
        None | Some("" | "system") => options,
        Some("rds") => options.ssl_ca_from_pem(RDS_CA_BUNDLE.to_vec()),
        Some(path) => options.ssl_ca(path),
    };
    Ok(options)
}
