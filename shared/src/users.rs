//! Users: accounts, roles, login throttling and the token version that revokes old tokens.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

use crate::auth::{AuthUser, TokenKeys};
use crate::db::{self, Tx};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::orders::{self, OrderSummary, Status};
use crate::stock;
use crate::time::timestamp;
use crate::validate::{Checks, Validate};

/// Read from a string whatever the JSON holds, so that `{"role": 1}` is a 400 naming
/// `role` like any other wrongly typed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase", try_from = "String")]
#[sqlx(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl TryFrom<String> for Role {
    type Error = &'static str;

    fn try_from(label: String) -> Result<Self, Self::Error> {
        match label.as_str() {
            "customer" => Ok(Role::Customer),
            "admin" => Ok(Role::Admin),
            _ => Err("must be one of customer, admin"),
        }
    }
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

/// The longest email an account can have, in characters (RFC 5321's path limit, and the
/// column's size). Checked on the normalised form: lower-casing can lengthen a string
/// ("İ" becomes "i̇", two characters).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Whether `email`, once normalised, fits an account's email column.
pub fn email_fits(normalized: &str) -> bool {
    normalized.chars().count() <= MAX_EMAIL_CHARS
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
        let email = normalize_email(&self.email);
        Checks::new()
            .text("email", &self.email, 1, MAX_EMAIL_CHARS)
            .check(
                email_fits(&email),
                "email",
                format!("must be at most {MAX_EMAIL_CHARS} characters long"),
            )
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
    /// Required when callers change their own email or password: a stolen token alone
    /// must not be enough to take an account over (OWASP ASVS V2.1.6).
    pub current_password: Option<String>,
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
        if let Some(current) = &self.current_password {
            checks.text("current_password", current, 1, 128);
        }
        checks.finish()
    }
}

fn check_email(checks: &mut Checks, email: &str) {
    let email = normalize_email(email);
    checks.check(
        email_fits(&email) && email_address::EmailAddress::is_valid(&email),
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

/// Checks credentials, throttled per email in the database (instances share nothing else),
/// and issues a token for the right password.
pub async fn login(
    pool: &MySqlPool,
    tokens: &TokenKeys,
    input: Credentials,
) -> ApiResult<LoginResponse> {
    let email = normalize_email(&input.email);
    let Some((id, role, version)) = authenticate(pool, email, input.password).await? else {
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
async fn authenticate(
    pool: &MySqlPool,
    email: String,
    password: String,
) -> ApiResult<Option<(u64, Role, u32)>> {
    db::transaction(pool, |tx| {
        let (email, password) = (email.clone(), password.clone());
        Box::pin(async move { attempt(tx, email, password).await })
    })
    .await
}

/// One attempt inside its transaction (see [`authenticate`]).
async fn attempt(
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

/// Applies a partial update for `caller`. Only an admin may change a role (403 otherwise).
/// Callers changing their own email or password must give their current password: missing
/// is a 400, wrong is a 403 that counts as a failed login for the account. A new password
/// bumps the token version, revoking every token issued before.
pub async fn update(
    pool: &MySqlPool,
    caller: AuthUser,
    id: u64,
    patch: UserPatch,
) -> ApiResult<User> {
    if patch.role.is_some() && !caller.is_admin() {
        return Err(ApiError::Forbidden("Only an admin may change a role."));
    }
    if caller.id == id && (patch.email.is_some() || patch.password.is_some()) {
        let Some(current) = patch.current_password.clone() else {
            return Err(ApiError::validation(
                "current_password",
                "is required to change your own email or password",
            ));
        };
        let email = get(pool, id).await?.email;
        if authenticate(pool, email, current).await?.is_none() {
            return Err(ApiError::Forbidden("The current password is wrong."));
        }
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

/// Follows the lock order of [`crate::stock`]: the user row, then every order of theirs
/// (so a concurrent cancel, deletion, payment or expiry of one of them has either
/// committed, and is seen, or waits until this has), then the products in id order.
async fn delete_in(tx: &mut Tx<'static>, id: u64) -> ApiResult<()> {
    if !stock::lock_user_exclusive(tx, id).await? {
        return Err(ApiError::NotFound("user"));
    }
    let holding: Vec<u64> = sqlx::query!(
        r#"SELECT id, status AS "status: Status" FROM orders WHERE user_id = ? ORDER BY id FOR UPDATE"#,
        id
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .filter(|order| order.status == Status::Pending)
    .map(|order| order.id)
    .collect();
    let held = stock::held_by(tx, &holding).await?;
    let ratings = crate::reviews::ratings_of_user(tx, id).await?;

    // One pass over the products in id order for both the stock and the ratings.
    let mut products: BTreeMap<u64, (u64, u32, u32)> = BTreeMap::new();
    for (product_id, quantity) in held.iter() {
        products.entry(product_id).or_default().0 = quantity;
    }
    for (product_id, rating) in ratings {
        let entry = products.entry(product_id).or_default();
        entry.1 += 1;
        entry.2 += u32::from(rating);
    }
    for (product_id, (quantity, reviews, rating_sum)) in products {
        sqlx::query!(
            "UPDATE products SET stock = stock + ?,
                    review_count = review_count - ?, rating_sum = rating_sum - ?,
                    updated_at = IF(? > 0, CURRENT_TIMESTAMP(6), updated_at)
             WHERE id = ?",
            quantity,
            reviews,
            rating_sum,
            quantity,
            product_id
        )
        .execute(&mut **tx)
        .await?;
    }
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
