//! Logging in, and the throttle that every password check goes through.

use serde::Deserialize;
use sqlx::MySqlPool;

use super::account::{self, MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS};
use super::client::ClientAddress;
use crate::error::{Error, FieldError, Result};
use crate::role::Role;
use crate::validate::{Checks, Validate};
use platform::db::{self, Tx};

/// Failed password checks allowed for one email from one client address within
/// [`THROTTLE_WINDOW_SECS`].
pub const MAX_FAILED_LOGINS: u32 = 5;
/// Failed password checks allowed from one client address across all emails within the
/// window: credential stuffing stops, while many customers behind one office address can
/// still mistype their passwords.
pub const MAX_FAILED_LOGINS_PER_ADDRESS: u32 = 100;
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

impl Validate for Credentials {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        // Only shape: any string is a (possibly wrong) credential, answered with 401.
        Checks::new()
            .text("email", &self.email, 1, MAX_EMAIL_CHARS)
            .check(
                account::fits(&account::normalize(&self.email)),
                "email",
                format!("must be at most {MAX_EMAIL_CHARS} characters long"),
            )
            .text("password", &self.password, 1, MAX_PASSWORD_CHARS)
            .finish()
    }
}

/// Who logged in: what a token is issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub id: u64,
    pub role: Role,
    /// Tokens carry it; bumping it (a new password) revokes every older token.
    pub token_version: u32,
}

/// Checks credentials, throttled in the database (instances share nothing else). A wrong
/// email or password is the same refusal.
pub async fn login(
    pool: &MySqlPool,
    input: Credentials,
    client: &ClientAddress,
) -> Result<Account> {
    authenticate(
        pool,
        account::normalize(&input.email),
        input.password,
        client,
    )
    .await?
    .ok_or(Error::WrongCredentials)
}

/// The account (id, role, token version) if `password` is the password of the account
/// keyed by `email`; `None` for a wrong password or an unknown email (a failure, counted);
/// 429 while the email is throttled for this client address, or the address is throttled
/// altogether. Logins and the current-password check of an update both come here, so a
/// wrong guess counts the same wherever it is made.
///
/// Failures are counted per (email, address) and per address, each in a window of
/// [`THROTTLE_WINDOW_SECS`] opened by its first failure. A stranger's guesses throttle only
/// the stranger's address: the owner, elsewhere, is not locked out.
///
/// Attempts are serialised on their throttle rows, the address's first and then the
/// email's (one lock order everywhere): the counts are read, the password checked and the
/// outcome recorded under those locks. So a burst of parallel guesses gets exactly the
/// allowed number of checks, and parallel attempts with the right password are never
/// mistaken for failures. Unknown emails take the same path, verified against a dummy
/// hash, so neither the answer, its timing nor the throttling tells which emails have
/// accounts. The right password clears the address's count for that email (not the
/// address's overall count, which successes with an account of one's own must not reset).
pub(super) async fn authenticate(
    pool: &MySqlPool,
    email: String,
    password: String,
    client: &ClientAddress,
) -> Result<Option<Account>> {
    db::transaction(pool, |tx| {
        let (email, password, client) = (email.clone(), password.clone(), client.clone());
        Box::pin(async move { attempt(tx, &email, password, &client).await })
    })
    .await
}

/// A throttle row, locked: whether its window still runs, and for how long.
struct Window {
    failures: u32,
    expired: bool,
    remaining: i64,
}

impl Window {
    fn refuses(&self, limit: u32) -> bool {
        !self.expired && self.failures >= limit
    }

    fn retry_after(&self) -> u64 {
        self.remaining.max(1) as u64
    }
}

/// One attempt inside its transaction (see [`authenticate`]).
async fn attempt(
    tx: &mut Tx<'static>,
    email: &str,
    password: String,
    client: &ClientAddress,
) -> Result<Option<Account>> {
    let address = client.as_str();
    sqlx::query!(
        "INSERT INTO login_address_throttle (client_address, failures, window_started_at)
         VALUES (?, 0, UTC_TIMESTAMP(6))
         ON DUPLICATE KEY UPDATE client_address = client_address",
        address
    )
    .execute(&mut **tx)
    .await?;
    let by_address = sqlx::query_as!(
        Window,
        r#"SELECT failures,
                  window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND AS "expired!: bool",
                  TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), window_started_at + INTERVAL ? SECOND) AS "remaining!: i64"
           FROM login_address_throttle WHERE client_address = ? FOR UPDATE"#,
        THROTTLE_WINDOW_SECS,
        THROTTLE_WINDOW_SECS,
        address
    )
    .fetch_one(&mut **tx)
    .await?;
    if by_address.refuses(MAX_FAILED_LOGINS_PER_ADDRESS) {
        return Err(Error::Throttled {
            retry_after_secs: by_address.retry_after(),
        });
    }

    sqlx::query!(
        "INSERT INTO login_throttle (email, client_address, failures, window_started_at)
         VALUES (?, ?, 0, UTC_TIMESTAMP(6))
         ON DUPLICATE KEY UPDATE email = email",
        email,
        address
    )
    .execute(&mut **tx)
    .await?;
    let by_email = sqlx::query_as!(
        Window,
        r#"SELECT failures,
                  window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND AS "expired!: bool",
                  TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), window_started_at + INTERVAL ? SECOND) AS "remaining!: i64"
           FROM login_throttle WHERE email = ? AND client_address = ? FOR UPDATE"#,
        THROTTLE_WINDOW_SECS,
        THROTTLE_WINDOW_SECS,
        email,
        address
    )
    .fetch_one(&mut **tx)
    .await?;
    if by_email.refuses(MAX_FAILED_LOGINS) {
        return Err(Error::Throttled {
            retry_after_secs: by_email.retry_after(),
        });
    }

    let account = sqlx::query!(
        r#"SELECT id, password_hash, role AS "role: Role", token_version FROM users WHERE email = ?"#,
        email
    )
    .fetch_optional(&mut **tx)
    .await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let valid = platform::password::verify(password, hash).await?;
    match account {
        Some(account) if valid => {
            succeeded(tx, email, address, &by_address).await?;
            Ok(Some(Account {
                id: account.id,
                role: account.role,
                token_version: account.token_version,
            }))
        }
        _ => {
            failed(tx, email, address).await?;
            Ok(None)
        }
    }
}

/// Clears the address's count for the email; the address's own row goes too when it holds
/// no failure that still counts.
async fn succeeded(
    tx: &mut Tx<'static>,
    email: &str,
    address: &str,
    by_address: &Window,
) -> Result<()> {
    sqlx::query!(
        "DELETE FROM login_throttle WHERE email = ? AND client_address = ?",
        email,
        address
    )
    .execute(&mut **tx)
    .await?;
    if by_address.failures == 0 || by_address.expired {
        sqlx::query!(
            "DELETE FROM login_address_throttle WHERE client_address = ?",
            address
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Counts a failure on both rows; a window that has passed starts afresh with it.
async fn failed(tx: &mut Tx<'static>, email: &str, address: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE login_throttle SET
             failures = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND, 1, failures + 1),
             window_started_at = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND,
                                    UTC_TIMESTAMP(6), window_started_at)
         WHERE email = ? AND client_address = ?",
        THROTTLE_WINDOW_SECS,
        THROTTLE_WINDOW_SECS,
        email,
        address
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "UPDATE login_address_throttle SET
             failures = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND, 1, failures + 1),
             window_started_at = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND,
                                    UTC_TIMESTAMP(6), window_started_at)
         WHERE client_address = ?",
        THROTTLE_WINDOW_SECS,
        THROTTLE_WINDOW_SECS,
        address
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
