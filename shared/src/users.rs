//! Users: accounts, roles and the token version that revokes old tokens.

use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

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
) -> Result<u64, crate::error::ApiError> {
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
