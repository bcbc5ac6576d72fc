//! Users: accounts, roles, login throttling and the token version that revokes old tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::auth::TokenKeys;
use crate::db::{self, Tx};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::orders::{self, OrderSummary};
use crate::time::timestamp;
use crate::validate::{Checks, Validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

/// The role and token version of a user, or `None` when the user does not exist.
pub async fn token_state(
    pool: &MySqlPool,
    user_id: u64,
) -> Result<Option<(Role, u32)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT role AS "role: Role", token_version FROM users WHERE id = ?"#,
        user_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.role, r.token_version)))
}

/// Emails are compared and stored trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Creates an admin, or promotes and re-passwords the account if the email exists:
/// how the first admin of a deployment is made without hand-written SQL.
pub async fn upsert_admin(
    pool: &MySqlPool,
    name: &str,
    email: &str,
    password: &str,
) -> ApiResult<u64> {
    let email = normalize_email(email);
    let hash = crate::password::hash(password.to_string()).await?;
    sqlx::query!(
        "INSERT INTO users (name, email, password_hash, role) VALUES (?, ?, ?, 'admin')
         ON DUPLICATE KEY UPDATE role = 'admin', password_hash = VALUES(password_hash),
             token_version = token_version + 1, updated_at = CURRENT_TIMESTAMP(6)",
        name,
        email,
        hash
    )
    .execute(pool)
    .await?;
    let id = sqlx::query_scalar!("SELECT id FROM users WHERE email = ?", email)
        .fetch_one(pool)
        .await?;
    Ok(id)
}

/// Failed logins allowed per email within [`THROTTLE_WINDOW_SECS`].
pub const MAX_FAILED_LOGINS: u32 = 5;
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;

/// A user as the API shows it: never a password or hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub role: Role,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// `GET /users/{id}`: the user and their latest orders.
#[derive(Debug, Serialize)]
pub struct Profile {
    #[serde(flatten)]
    pub user: User,
    pub orders: Vec<OrderSummary>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: String,
}

impl Validate for Registration {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        checks.text("name", &self.name, 1, 100);
        check_email(&mut checks, &self.email);
        check_password(&mut checks, &self.password);
        checks.finish()
    }
}

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
            .text("email", &self.email, 1, 254)
            .text("password", &self.password, 1, 128)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub role: Option<Role>,
}

impl Validate for UserPatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        let empty = self.name.is_none()
            && self.email.is_none()
            && self.password.is_none()
            && self.role.is_none();
        checks.check(!empty, "body", "must set at least one field");
        if let Some(name) = &self.name {
            checks.text("name", name, 1, 100);
        }
        if let Some(email) = &self.email {
            check_email(&mut checks, email);
        }
        if let Some(password) = &self.password {
            check_password(&mut checks, password);
        }
        checks.finish()
    }
}

fn check_email(checks: &mut Checks, email: &str) {
    let email = normalize_email(email);
    checks.check(
        email.len() <= 254 && email_address::EmailAddress::is_valid(&email),
        "email",
        "must be a valid email address",
    );
}

fn check_password(checks: &mut Checks, password: &str) {
    let len = password.chars().count();
    checks.check(
        (8..=128).contains(&len),
        "password",
        "must be 8 to 128 characters long",
    );
}

#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: User,
}

pub async fn get(pool: &MySqlPool, id: u64) -> ApiResult<User> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, CAST(email AS CHAR) AS "email!: String", role AS "role: Role",
                  created_at AS "created_at: DateTime<Utc>", updated_at AS "updated_at: DateTime<Utc>"
           FROM users WHERE id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(ApiError::NotFound("user"))
}

pub async fn profile(pool: &MySqlPool, id: u64) -> ApiResult<Profile> {
    let user = get(pool, id).await?;
    let orders = orders::recent_for_user(pool, id, 20).await?;
    Ok(Profile { user, orders })
}

pub async fn register(pool: &MySqlPool, input: Registration) -> ApiResult<User> {
    let email = normalize_email(&input.email);
    let hash = crate::password::hash(input.password).await?;
    let result = sqlx::query!(
        "INSERT INTO users (name, email, password_hash) VALUES (?, ?, ?)",
        input.name,
        email,
        hash
    )
    .execute(pool)
    .await
    .map_err(duplicate_email)?;
    get(pool, result.last_insert_id()).await
}

/// Checks credentials, throttled per email in the database (instances share nothing else).
///
/// Attempts for one email are serialised on its throttle row: the count is read, the
/// password checked and the outcome recorded under that row's lock. So a burst of parallel
/// guesses gets exactly five checks, and parallel logins with the right password are never
/// mistaken for failures. Unknown emails take the same path, verified against a dummy hash,
/// so neither the answer, its timing nor the throttling tells which emails have accounts.
/// A successful login clears the count.
pub async fn login(
    pool: &MySqlPool,
    tokens: &TokenKeys,
    input: Credentials,
) -> ApiResult<LoginResponse> {
    let email = normalize_email(&input.email);
    let password = input.password;
    let account = db::transaction(pool, |tx| {
        let (email, password) = (email.clone(), password.clone());
        Box::pin(async move { attempt_login(tx, email, password).await })
    })
    .await?;
    let Some((id, role, version)) = account else {
        return Err(ApiError::Unauthorized("The email or password is wrong."));
    };
    let issued = tokens.issue(id, role, version)?;
    Ok(LoginResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        user: get(pool, id).await?,
    })
}

/// One login attempt inside its transaction: `Some(account)` for the right password,
/// `None` for a wrong one (recorded), 429 while the email is throttled.
async fn attempt_login(
    tx: &mut Tx<'static>,
    email: String,
    password: String,
) -> ApiResult<Option<(u64, Role, u32)>> {
    sqlx::query!(
        "INSERT INTO login_throttle (email, failures, window_started_at) VALUES (?, 0, UTC_TIMESTAMP(6))
         ON DUPLICATE KEY UPDATE email = email",
        email
    )
    .execute(&mut **tx)
    .await?;
    let throttle = sqlx::query!(
        r#"SELECT failures,
                  window_started_at <= UTC_TIMESTAMP(6) - INTERVAL 15 MINUTE AS "expired!: bool",
                  TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), window_started_at + INTERVAL 15 MINUTE) AS "remaining!: i64"
           FROM login_throttle WHERE email = ? FOR UPDATE"#,
        email
    )
    .fetch_one(&mut **tx)
    .await?;
    if !throttle.expired && throttle.failures >= MAX_FAILED_LOGINS {
        return Err(ApiError::TooManyRequests {
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
    let valid = crate::password::verify(password, hash).await?;
    match account {
        Some(account) if valid => {
            sqlx::query!("DELETE FROM login_throttle WHERE email = ?", email)
                .execute(&mut **tx)
                .await?;
            Ok(Some((account.id, account.role, account.token_version)))
        }
        _ => {
            // A window older than 15 minutes starts afresh with this failure.
            sqlx::query!(
                "UPDATE login_throttle SET
                     failures = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL 15 MINUTE, 1, failures + 1),
                     window_started_at = IF(window_started_at <= UTC_TIMESTAMP(6) - INTERVAL 15 MINUTE,
                                            UTC_TIMESTAMP(6), window_started_at)
                 WHERE email = ?",
                email
            )
            .execute(&mut **tx)
            .await?;
            Ok(None)
        }
    }
}

/// Applies a partial update. Only an admin may change a role (403 otherwise); a new
/// password bumps the token version, revoking every token issued before.
pub async fn update(
    pool: &MySqlPool,
    id: u64,
    patch: UserPatch,
    by_admin: bool,
) -> ApiResult<User> {
    if patch.role.is_some() && !by_admin {
        return Err(ApiError::Forbidden("Only an admin may change a role."));
    }
    let password_hash = match patch.password {
        Some(password) => Some(crate::password::hash(password).await?),
        None => None,
    };
    let email = patch.email.as_deref().map(normalize_email);
    let result = sqlx::query!(
        r#"UPDATE users SET
               name = COALESCE(?, name),
               email = COALESCE(?, email),
               role = COALESCE(?, role),
               password_hash = COALESCE(?, password_hash),
               token_version = token_version + IF(? IS NULL, 0, 1),
               updated_at = CURRENT_TIMESTAMP(6)
           WHERE id = ?"#,
        patch.name,
        email,
        patch.role,
        password_hash,
        password_hash,
        id
    )
    .execute(pool)
    .await
    .map_err(duplicate_email)?;
    if result.rows_affected() == 0 {
        return Err(ApiError::NotFound("user"));
    }
    get(pool, id).await
}

/// Removes the user and everything of theirs in one transaction: stock held by their
/// pending orders goes back on the shelf and their reviews leave the product ratings;
/// orders, order lines, payments, reviews, cart and idempotency keys go by cascade.
/// Their tokens stop working because the row they name is gone.
pub async fn delete(pool: &MySqlPool, id: u64) -> ApiResult<()> {
    db::transaction(pool, |tx| Box::pin(delete_in(tx, id))).await
}

async fn delete_in(tx: &mut Tx<'static>, id: u64) -> ApiResult<()> {
    let exists = sqlx::query_scalar!("SELECT id FROM users WHERE id = ? FOR UPDATE", id)
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound("user"));
    }
    crate::stock::release_pending_orders_of_user(tx, id).await?;
    crate::reviews::forget_ratings_of_user(tx, id).await?;
    sqlx::query!("DELETE FROM users WHERE id = ?", id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn duplicate_email(err: sqlx::Error) -> ApiError {
    if db::is_unique_violation(&err) {
        ApiError::Conflict {
            kind: "duplicate-email",
            detail: "An account with this email already exists.".into(),
            errors: vec![FieldError::new("email", "is already registered")],
        }
    } else {
        err.into()
    }
}
