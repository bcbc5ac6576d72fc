//! Accounts in the database: registration, reading, updating, and the checks other
//! resources make on a user id. Deletion has a module of its own (`super::deletion`).

use chrono::{DateTime, Utc};
use sqlx::MySqlPool;

use super::account::{Email, Password};
use super::client::ClientAddress;
use super::login::authenticate;
use super::model::{Profile, Registration, User, UserPatch};
use crate::caller::Caller;
use crate::error::{Conflict, Error, FieldError, Result};
use crate::orders;
use crate::role::Role;
use platform::db;

/// Creates an admin, or promotes and re-passwords the account if the email exists:
/// how the first admin of a deployment is made without hand-written SQL.
pub async fn upsert_admin(
    pool: &MySqlPool,
    name: &str,
    email: &Email,
    password: Password,
) -> Result<u64> {
    let hash = platform::password::hash(password.into_inner()).await?;
    sqlx::query!(
        "INSERT INTO users (name, email, password_hash, role) VALUES (?, ?, ?, 'admin')
         ON DUPLICATE KEY UPDATE role = 'admin', password_hash = VALUES(password_hash),
             token_version = token_version + 1, updated_at = CURRENT_TIMESTAMP(6)",
        name,
        email.as_str(),
        hash
    )
    .execute(pool)
    .await?;
    let id = sqlx::query_scalar!("SELECT id FROM users WHERE email = ?", email.as_str())
        .fetch_one(pool)
        .await?;
    Ok(id)
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<User> {
    sqlx::query_as!(
        User,
        r#"SELECT id, name, CAST(email AS CHAR) AS "email!: String", role AS "role: Role",
                  created_at AS "created_at: DateTime<Utc>", updated_at AS "updated_at: DateTime<Utc>"
           FROM users WHERE id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("user"))
}

pub async fn profile(pool: &MySqlPool, id: u64) -> Result<Profile> {
    let user = get(pool, id).await?;
    let orders = orders::recent_for_user(pool, id, 20).await?;
    Ok(Profile { user, orders })
}

pub async fn register(pool: &MySqlPool, input: Registration) -> Result<User> {
    let email = Email::parse(&input.email).map_err(|m| Error::invalid("email", m))?;
    let password = Password::parse(input.password).map_err(|m| Error::invalid("password", m))?;
    let hash = platform::password::hash(password.into_inner()).await?;
    let result = sqlx::query!(
        "INSERT INTO users (name, email, password_hash) VALUES (?, ?, ?)",
        input.name,
        email.as_str(),
        hash
    )
    .execute(pool)
    .await
    .map_err(duplicate_email)?;
    get(pool, result.last_insert_id()).await
}

/// Applies a partial update for `caller`. Only an admin may change a role (forbidden
/// otherwise). Callers changing their own email or password must give their current
/// password: missing is invalid input, wrong is forbidden and counts as a failed login for
/// the account from `client`. A new password bumps the token version, revoking every token
/// issued before.
pub async fn update(
    pool: &MySqlPool,
    caller: Caller,
    id: u64,
    patch: UserPatch,
    client: &ClientAddress,
) -> Result<User> {
    if patch.role.is_some() && !caller.is_admin() {
        return Err(Error::Forbidden("Only an admin may change a role."));
    }
    if caller.id == id && (patch.email.is_some() || patch.password.is_some()) {
        let Some(current) = patch.current_password.clone() else {
            return Err(Error::invalid(
                "current_password",
                "is required to change your own email or password",
            ));
        };
        let email = get(pool, id).await?.email;
        if authenticate(pool, email, current, client).await?.is_none() {
            return Err(Error::Forbidden("The current password is wrong."));
        }
    }
    let password_hash = match patch.password {
        Some(raw) => {
            let password = Password::parse(raw).map_err(|m| Error::invalid("password", m))?;
            Some(platform::password::hash(password.into_inner()).await?)
        }
        None => None,
    };
    let email = match patch.email.as_deref() {
        Some(raw) => Some(Email::parse(raw).map_err(|m| Error::invalid("email", m))?),
        None => None,
    };
    let email = email.as_ref().map(Email::as_str);
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
        return Err(Error::NotFound("user"));
    }
    get(pool, id).await
}

/// Routes under `/users/{id}`: a user that does not exist is not found (only admins get
/// here for other users).
pub async fn require_existing_user(pool: &MySqlPool, user_id: u64) -> Result<()> {
    if user_exists(pool, user_id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("user"))
    }
}

async fn user_exists(pool: &MySqlPool, user_id: u64) -> Result<bool> {
    let found = sqlx::query_scalar!("SELECT id FROM users WHERE id = ?", user_id)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

fn duplicate_email(err: sqlx::Error) -> Error {
    if db::is_unique_violation(&err) {
        Error::Conflict {
            kind: Conflict::DuplicateEmail,
            detail: "An account with this email already exists.".into(),
            errors: vec![FieldError::new("email", "is already registered")],
        }
    } else {
        err.into()
    }
}
