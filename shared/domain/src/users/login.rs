//! Logging in, and the throttle that every password check goes through.

use serde::Deserialize;
use sqlx::MySqlPool;

use super::account::{self, MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS};
use crate::error::{Error, FieldError, Result};
use crate::role::Role;
use crate::validate::{Checks, Validate};
use platform::db::{self, Tx};

/// Failed password checks allowed per email within [`THROTTLE_WINDOW_SECS`].
pub const MAX_FAILED_LOGINS: u32 = 5;
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

/// Checks credentials, throttled per email in the database (instances share nothing
/// else). A wrong email or password is the same refusal.
pub async fn login(pool: &MySqlPool, input: Credentials) -> Result<Account> {
    authenticate(pool, account::normalize(&input.email), input.password)
        .await?
        .ok_or(Error::WrongCredentials)
}

/// The account (id, role, token version) if `password` is the password of the account
/// keyed by `email`; `None` for a wrong password or an unknown email (a failure, counted);
/// 429 while the email is throttled. Logins and the current-password check of an update
/// both come here, so a wrong guess counts the same wherever it is made.
///
/// Attempts for one email are serialised on its throttle row: the count is read, the
/// password checked and the outcome recorded under that row's lock. So a burst of parallel
/// guesses gets exactly five checks, and parallel attempts with the right password are
/// never mistaken for failures. Unknown emails take the same path, verified against a
/// dummy hash, so neither the answer, its timing nor the throttling tells which emails have
/// accounts. The right password clears the count.
pub(super) async fn authenticate(
    pool: &MySqlPool,
    email: String,
    password: String,
) -> Result<Option<Account>> {
    db::transaction(pool, |tx| {
        let (email, password) = (email.clone(), password.clone());
        Box::pin(async move { attempt(tx, email, password).await })
    })
    .await
}

/// One attempt inside its transaction (see [`authenticate`]).
async fn attempt(tx: &mut Tx<'static>, email: String, password: String) -> Result<Option<Account>> {
    sqlx::query!(
        "INSERT INTO login_throttle (email, failures, window_started_at) VALUES (?, 0, UTC_TIMESTAMP(6))
         ON DUPLICATE KEY UPDATE email = email",
        email
    )
    .execute(&mut **tx)
    .await?;
    let throttle = sqlx::query!(
        r#"SELECT failures,
                  window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND AS "expired!: bool",
                  TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), window_started_at + INTERVAL ? SECOND) AS "remaining!: i64"
           FROM login_throttle WHERE email = ? FOR UPDATE"#,
        THROTTLE_WINDOW_SECS,
        THROTTLE_WINDOW_SECS,
        email
    )
    .fetch_one(&mut **tx)
    .await?;
    if !throttle.expired && throttle.failures >= MAX_FAILED_LOGINS {
        return Err(Error::Throttled {
            retry_after_secs: throttle.remaining.max(1) as u64,
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
            sqlx::query!("DELETE FROM login_throttle WHERE email = ?", email)
                .execute(&mut **tx)
                .await?;
            Ok(Some(Account {
                id: account.id,
                role: account.role,
                token_version: account.token_version,
            }))
        }
        _ => {
            // A window that has passed starts afresh with this failure.
            sqlx::query!(
                "UPDATE login_throttle SET
                     failures = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND, 1, failures + 1),
                     window_started_at = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL ? SECOND,
                                            UTC_TIMESTAMP(6), window_started_at)
                 WHERE email = ?",
                THROTTLE_WINDOW_SECS,
                THROTTLE_WINDOW_SECS,
                email
            )
            .execute(&mut **tx)
            .await?;
            Ok(None)
        }
    }
}
