//! The MySQL pool, sized for Lambda, and the classification of database errors.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Connection, Executor, MySql, MySqlPool, Transaction};

use crate::config::DatabaseConfig;

pub type Tx<'c> = Transaction<'c, MySql>;

/// What the closure given to [`transaction`] returns: `Box::pin(async move { ... })`.
pub type TxFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// One Lambda instance serves one request at a time, so two connections are plenty
/// (the second covers a request that holds a transaction while another query runs).
/// The pool connects lazily: a cold start with the database down still answers 503
/// instead of crashing, and recovers on its own once the database is back.
pub fn pool(config: &DatabaseConfig) -> MySqlPool {
    pool_with(config.connect_options(), config.max_connections)
}

/// How long a connection may sit idle and still be trusted without a ping. The price: a
/// connection the server ends within that second of its last use (a failover under load)
/// fails the one query that next uses it, with a 503 the client may retry.
pub const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// How long a pooled connection may sit idle before the pool closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The server closes a session idle this long (its `wait_timeout`, set on every connection
/// and, for the created cluster, in template.yaml's parameter group). A running instance's
/// pool never leaves a connection idle past [`IDLE_TIMEOUT`]; only a frozen or retired
/// Lambda environment, whose pool cannot run, does, and without this the server would keep
/// its sockets for its default 28,800 s, counting against `max_connections` and keeping an
/// auto-paused cluster awake.
pub const SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(2 * IDLE_TIMEOUT.as_secs());

pub fn pool_with(options: MySqlConnectOptions, max_connections: u32) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        // sqlx pings every connection as it comes back to the pool, and by default again
        // before handing it out: a round trip per query under load. Only a connection that
        // has sat idle (a thawed Lambda, a quiet minute) is tested before use; a dead one is
        // then dropped and another opened, so the request still succeeds.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= TRUSTED_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(|conn, _| {
            Box::pin(async move {
                let timeout = SERVER_IDLE_TIMEOUT.as_secs();
                conn.execute(format!("SET SESSION wait_timeout = {timeout}").as_str())
                    .await
                    .map(|_| ())
            })
        })
        .idle_timeout(Some(IDLE_TIMEOUT))
        .max_lifetime(Some(Duration::from_secs(15 * 60)))
        .connect_lazy_with(options)
}

/// The database is unreachable or the pool is exhausted.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
    ) || mysql_code(err).is_some_and(|code| {
        // Too many connections, server shutting down, read-only failover in progress.
        matches!(code, 1040 | 1053 | 1290 | 1836 | 2002 | 2003 | 2006 | 2013)
    })
}

/// The server refused the user or password: the secret may have been rotated.
pub fn is_access_denied(err: &sqlx::Error) -> bool {
    mysql_code(err) == Some(1045)
}

/// A deadlock or lock wait timeout: the transaction was rolled back and may simply be retried.
pub fn is_retryable(err: &sqlx::Error) -> bool {
    mysql_code(err).is_some_and(|code| matches!(code, 1205 | 1213))
}

pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}

fn mysql_code(err: &sqlx::Error) -> Option<u16> {
    err.as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|e| e.number())
}

/// How many times a transaction that hit a deadlock or lock timeout is run again.
pub const MAX_ATTEMPTS: u32 = 5;

/// Transactions run again by [`transaction`] since the process started. A retry hides a
/// deadlock from the client but not its cost; the lock order of the domain is meant to
/// make them rare, and tests read this to prove a path never needs one.
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// How many transactions [`transaction`] has run again since the process started.
pub fn retries() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

/// Runs `work` in a fresh transaction, committing on success and retrying the whole
/// transaction on deadlock or lock wait timeout (with a short, growing pause).
/// The closure gets the transaction and must leave committing to this function.
pub async fn transaction<T, E, F>(pool: &MySqlPool, mut work: F) -> Result<T, E>
where
    E: From<sqlx::Error> + RetryableError,
    F: for<'t> FnMut(&'t mut Tx<'static>) -> TxFuture<'t, T, E>,
{
    let mut attempt = 1;
    loop {
        let mut tx = pool.begin().await?;
        let result = match work(&mut tx).await {
            Ok(value) => tx.commit().await.map(|()| value).map_err(E::from),
            Err(err) => {
                // Dropping the transaction rolls it back; do it explicitly to free locks now.
                let _ = tx.rollback().await;
                Err(err)
            }
        };
        match result {
            Err(err) if err.is_retryable() && attempt < MAX_ATTEMPTS => {
                RETRIES.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    attempt,
                    "transaction hit a deadlock or lock timeout; retrying"
                );
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Lets [`transaction`] tell a deadlock apart from a domain error.
pub trait RetryableError {
    fn is_retryable(&self) -> bool;
}

impl RetryableError for sqlx::Error {
    fn is_retryable(&self) -> bool {
        is_retryable(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_unavailable_not_bugs() {
        let err = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_unavailable(&err));
        assert!(!is_retryable(&err));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}
