//! The database user the API functions connect as: data rights only (SELECT, INSERT,
//! UPDATE, DELETE on the shop's schema), never DROP, ALTER or CREATE. The stack generates
//! its password in a secret of its own; this function, which alone holds the master
//! credentials, creates the user or sets its password to the secret's on every deploy.

use serde::Deserialize;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Connection, MySqlConnection, MySqlPool};

/// `{"username", "password"}`, as Secrets Manager generates it for the stack.
#[derive(Deserialize)]
pub struct AppUser {
    pub username: String,
    password: String,
}

/// No `Debug` derive: the password must never reach a log.
impl std::fmt::Debug for AppUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppUser({})", self.username)
    }
}

impl AppUser {
    /// From the secret's JSON. The user name goes into SQL as an identifier, so only
    /// letters, digits and `_` are accepted.
    pub fn from_secret(text: &str) -> Result<AppUser, String> {
        let user: AppUser = serde_json::from_str(text)
            .map_err(|_| "the application user secret is not {\"username\", \"password\"}")?;
        let plain =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain(&user.username) || user.username.len() > 32 {
            return Err("the application user name must be 1 to 32 letters, digits or _".into());
        }
        if user.password.len() < 16 {
            return Err("the application user password must have at least 16 characters".into());
        }
        Ok(user)
    }
}

/// Creates the user if it is missing, sets its password to the secret's (so rotating the
/// secret and deploying follows it), and grants it the data rights on the pool's schema.
pub async fn ensure(pool: &MySqlPool, user: &AppUser) -> Result<(), String> {
    // Account statements take no placeholders: the password goes in as an escaped literal,
    // on a connection of its own that never logs its statements.
    let options: MySqlConnectOptions = pool
        .connect_options()
        .as_ref()
        .clone()
        .log_statements(log::LevelFilter::Off)
        .log_slow_statements(log::LevelFilter::Off, std::time::Duration::MAX);
    let mut conn = MySqlConnection::connect_with(&options)
        .await
        .map_err(|e| format!("connecting to create the application user: {e}"))?;
    let schema: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("reading the schema name: {e}"))?;
    let schema = schema.ok_or("the connection names no schema")?;
    if !schema
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!("unexpected schema name {schema:?}"));
    }
    let name = &user.username;
    let password = user.password.replace('\\', "\\\\").replace('\'', "''");
    let statements = format!(
        "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{password}';
         ALTER USER '{name}'@'%' IDENTIFIED BY '{password}';
         GRANT SELECT, INSERT, UPDATE, DELETE ON `{schema}`.* TO '{name}'@'%';"
    );
    // Called as a function: `raw_sql(..).execute(&mut conn)` defeats the compiler's proof
    // that the deploy's future is `Send`.
    let outcome = sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&statements)).await;
    let _ = conn.close().await;
    // The error names the statement, and so the password: keep only its code and message.
    outcome
        .map(|_| ())
        .map_err(|e| match e.as_database_error() {
            Some(db) => format!("creating the application user {name}: {}", db.message()),
            None => format!("creating the application user {name}: the database connection failed"),
        })
}
