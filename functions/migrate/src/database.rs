//! Where the migrations run: the database, reached on first use, and the migrations
//! themselves, applied patiently while an auto-paused cluster wakes up.

use std::future::Future;
use std::time::{Duration, Instant};

use domain::schema::SchemaError;
use sqlx::MySqlPool;
use sqlx::migrate::MigrateError;
use tokio::sync::OnceCell;

use crate::app_user::AppUser;

const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// What a failed TLS handshake means for the stack's parameters.
pub const TLS_ADVICE: &str = "TLS to the database failed: its certificate must be signed by \
    an authority DB_SSL_CA trusts (DbSslCa=rds: the Amazon RDS authorities; system: the \
    public roots) and, with verify_identity, name the host the functions connect to. For a \
    server whose certificate neither signs, DbSslMode=required encrypts without verifying";

/// Where the database comes from. A Delete never asks, so it succeeds even when the
/// configuration or the database is gone, which is what lets a broken stack be deleted.
pub trait Connect {
    fn pool(&self) -> impl Future<Output = Result<MySqlPool, String>> + Send;

    /// The user the API functions connect as, when the stack has one (see `app_user`).
    fn app_user(&self) -> impl Future<Output = Result<Option<AppUser>, String>> + Send {
        async { Ok(None) }
    }
}

impl Connect for MySqlPool {
    async fn pool(&self) -> Result<MySqlPool, String> {
        Ok(self.clone())
    }
}

/// The pool described by the environment (`Config::load`), built on first use and kept
/// for the life of the instance. A configuration error is not kept: the next invocation
/// tries again.
#[derive(Default)]
pub struct ConfiguredPool(OnceCell<MySqlPool>);

impl Connect for ConfiguredPool {
    async fn pool(&self) -> Result<MySqlPool, String> {
        self.0
            .get_or_try_init(|| async {
                // The database only: migrations never need the token signing key.
                let config = platform::config::DatabaseConfig::load()
                    .await
                    .map_err(|e| format!("configuration: {e}"))?;
                Ok(platform::db::pool(&config))
            })
            .await
            .cloned()
    }

    async fn app_user(&self) -> Result<Option<AppUser>, String> {
        let secret = platform::aws::secret_named_by("APP_DB_SECRET_ARN")
            .await
            .map_err(|e| format!("configuration: {e}"))?;
        let Some(text) = secret else {
            return Ok(None);
        };
        let host = std::env::var("APP_DB_HOST").map_err(|_| {
            "configuration: APP_DB_HOST (the host pattern the application user may connect \
             from) is not set"
        })?;
        AppUser::from_secret(text.expose(), &host).map(Some)
    }
}

/// What every deploy does to the database: the pending migrations, then the application
/// user with its current password. Returns the schema version.
pub async fn prepare(database: &impl Connect, budget: Duration) -> Result<i64, String> {
    let pool = database.pool().await?;
    let version = apply_migrations(&pool, budget).await?;
    if let Some(user) = database.app_user().await? {
        crate::app_user::ensure(&pool, &user).await?;
    }
    Ok(version)
}

/// The newest migration this build carries.
pub fn schema_version() -> i64 {
    domain::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Applies the migrations and the data steps after them (`domain::schema`), waiting for the
/// database while it is unreachable (an Aurora cluster resuming from auto-pause takes about
/// 15 s) but not past `budget`.
pub async fn apply_migrations(pool: &MySqlPool, budget: Duration) -> Result<i64, String> {
    let deadline = Instant::now() + budget;
    let mut pause = Duration::from_millis(500);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let error = match tokio::time::timeout(remaining, domain::schema::migrate(pool)).await {
            Ok(Ok(())) => return Ok(schema_version()),
            Ok(Err(error)) => error,
            Err(_) => {
                return Err(format!(
                    "the migrations did not finish within {} s",
                    budget.as_secs()
                ));
            }
        };
        let sql_error = match &error {
            SchemaError::Migrate(MigrateError::Execute(e)) | SchemaError::Database(e) => Some(e),
            _ => None,
        };
        if let Some(e) = sql_error
            && is_tls_refusal(e)
        {
            // A certificate that does not verify will not verify on the next attempt either.
            return Err(format!("{TLS_ADVICE} ({e})"));
        }
        if !error.is_unavailable() || Instant::now() + pause >= deadline {
            return Err(format!("applying the migrations: {error}"));
        }
        tracing::warn!(%error, "database not reachable yet; trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// The TLS handshake refused the server (its certificate, its name): rustls reports that as
/// invalid data on the stream, which sqlx passes on as an I/O error.
fn is_tls_refusal(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}
