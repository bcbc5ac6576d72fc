//! The database user the API functions connect as: SELECT, INSERT, UPDATE and DELETE on
//! the shop's tables, granted table by table so that the migrations' own record
//! (`_sqlx_migrations`, `data_migrations`) are not among them, and only from the functions' addresses (a host
//! pattern, `APP_DB_HOST`). Never DROP, ALTER or CREATE.
//!
//! The stack generates the user's password in a secret of its own. This function, which
//! alone holds the master credentials, runs [`ensure`] after every migration run: it
//! creates the user or sets its password to the secret's, grants each table the
//! migrations have made, takes back grants on tables that are gone, on the migrations' records
//! and on the whole schema (how earlier deploys granted), and drops the same user at any
//! other host (earlier deploys created it at `%`, any host).

use std::collections::BTreeSet;

use serde::Deserialize;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Connection, MySqlConnection, MySqlPool};

/// The migrations' own records: sqlx's and the data steps' (`domain::schema`). The
/// functions never touch them, so a stolen application password cannot rewrite what has run.
pub const MIGRATION_TABLES: [&str; 2] = ["_sqlx_migrations", "data_migrations"];

/// `{"username", "password"}`, as Secrets Manager generates it for the stack, and the host
/// pattern the user may connect from.
pub struct AppUser {
    pub username: String,
    password: String,
    pub host: String,
}

/// No `Debug` derive: the password must never reach a log.
impl std::fmt::Debug for AppUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppUser({}@{})", self.username, self.host)
    }
}

#[derive(Deserialize)]
struct Secret {
    username: String,
    password: String,
}

impl AppUser {
    /// From the secret's JSON and the host pattern. Both names go into SQL, so the user
    /// name may hold only letters, digits and `_`, and the host only what MySQL host
    /// patterns use (letters, digits, `.`, `-`, `:`, `/` and the wildcards `%` and `_`).
    pub fn from_secret(text: &str, host: &str) -> Result<AppUser, String> {
        let secret: Secret = serde_json::from_str(text)
            .map_err(|_| "the application user secret is not {\"username\", \"password\"}")?;
        let plain =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain(&secret.username) || secret.username.len() > 32 {
            return Err("the application user name must be 1 to 32 letters, digits or _".into());
        }
        if secret.password.len() < 16 {
            return Err("the application user password must have at least 16 characters".into());
        }
        let pattern = |c: char| c.is_ascii_alphanumeric() || ".-:/%_".contains(c);
        if host.is_empty() || host.len() > 255 || !host.chars().all(pattern) {
            return Err(format!(
                "the application user's host pattern {host:?} must be 1 to 255 letters, digits \
                 or . - : / % _ (for example 10.80.% or 10.80.0.0/255.255.224.0)"
            ));
        }
        Ok(AppUser {
            username: secret.username,
            password: secret.password,
            host: host.to_string(),
        })
    }

    fn account(&self) -> String {
        account(&self.username, &self.host)
    }
}

/// `'user'@'host'`, each quoted as a string literal.
fn account(user: &str, host: &str) -> String {
    format!("{}@{}", literal(user), literal(host))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Creates the user if it is missing and sets its password to the secret's (so rotating
/// the secret and deploying follows it), then brings its grants in step with the tables of
/// the pool's schema.
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
    let outcome = ensure_on(&mut conn, user).await;
    let _ = conn.close().await;
    outcome
}

async fn ensure_on(conn: &mut MySqlConnection, user: &AppUser) -> Result<(), String> {
    let name = &user.username;
    let password = literal(&user.password);
    let account = user.account();
    let login = format!(
        "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {password};
         ALTER USER {account} IDENTIFIED BY {password};"
    );
    // The error names the statement, and so the password: keep only the server's message.
    execute(conn, &login)
        .await
        .map_err(|e| format!("creating the application user {name}: {e}"))?;

    let grants = Grants::read(conn, user)
        .await
        .map_err(|e| format!("reading the application user's grants (the master user needs SELECT on the mysql schema): {e}"))?;
    let statements = grants.statements(user);
    execute(conn, &statements.join("\n"))
        .await
        .map_err(|e| format!("granting the application user {name} its tables: {e}"))?;
    tracing::info!(
        user = %user.username,
        host = %user.host,
        tables = grants.tables.len(),
        revoked = grants.revocations(),
        "application user in step with the schema"
    );
    Ok(())
}

/// Runs `sql` (statements separated by `;`) and reports only the server's message.
async fn execute(conn: &mut MySqlConnection, sql: &str) -> Result<(), String> {
    // Called as a function: `raw_sql(..).execute(&mut conn)` defeats the compiler's proof
    // that the deploy's future is `Send`.
    sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(sql))
        .await
        .map(|_| ())
        .map_err(|e| match e.as_database_error() {
            Some(db) => db.message().to_string(),
            None => "the database connection failed".into(),
        })
}

/// What the schema holds and what the user has been granted so far.
struct Grants {
    schema: String,
    /// The schema's tables but the migrations' record: granted.
    tables: BTreeSet<String>,
    /// Tables the user holds rights on that it should not: gone, or the migrations' record.
    stale_tables: BTreeSet<String>,
    /// Schemas the user holds rights on as a whole.
    schema_grants: BTreeSet<String>,
    /// The same user name at other hosts.
    other_hosts: BTreeSet<String>,
}

impl Grants {
    async fn read(conn: &mut MySqlConnection, user: &AppUser) -> Result<Grants, sqlx::Error> {
        let schema: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
            .fetch_one(&mut *conn)
            .await?;
        let schema = schema.ok_or_else(|| sqlx::Error::Protocol("no schema selected".into()))?;
        let tables: BTreeSet<String> = sqlx::query_scalar(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables
             WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .filter(|t: &String| !MIGRATION_TABLES.contains(&t.as_str()))
        .collect();
        let granted: BTreeSet<String> = sqlx::query_scalar(
            "SELECT CAST(Table_name AS CHAR) FROM mysql.tables_priv
             WHERE User = ? AND Host = ? AND Db = ?",
        )
        .bind(&user.username)
        .bind(&user.host)
        .bind(&schema)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let schema_grants =
            sqlx::query_scalar("SELECT CAST(Db AS CHAR) FROM mysql.db WHERE User = ? AND Host = ?")
                .bind(&user.username)
                .bind(&user.host)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect();
        let other_hosts = sqlx::query_scalar(
            "SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ? AND Host <> ?",
        )
        .bind(&user.username)
        .bind(&user.host)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        Ok(Grants {
            stale_tables: granted.difference(&tables).cloned().collect(),
            schema,
            tables,
            schema_grants,
            other_hosts,
        })
    }

    /// Grants first, then what is taken back: the functions never lose a right they need,
    /// not even for the moment between two statements.
    fn statements(&self, user: &AppUser) -> Vec<String> {
        let account = user.account();
        let schema = identifier(&self.schema);
        let grant = self.tables.iter().map(|t| {
            let table = identifier(t);
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.{table} TO {account};")
        });
        let revoke_tables = self.stale_tables.iter().map(|t| {
            let table = identifier(t);
            format!("REVOKE ALL PRIVILEGES ON {schema}.{table} FROM {account};")
        });
        let revoke_schemas = self.schema_grants.iter().map(|db| {
            let db = identifier(db);
            format!("REVOKE ALL PRIVILEGES ON {db}.* FROM {account};")
        });
        let drop_others = self
            .other_hosts
            .iter()
            .map(|host| format!("DROP USER {};", self::account(&user.username, host)));
        grant
            .chain(revoke_tables)
            .chain(revoke_schemas)
            .chain(drop_others)
            .collect()
    }

    fn revocations(&self) -> usize {
        self.stale_tables.len() + self.schema_grants.len() + self.other_hosts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = r#"{"username": "shop_app", "password": "a-password-of-some-length"}"#;

    #[test]
    fn host_patterns_are_checked_before_they_reach_sql() {
        for host in [
            "10.80.%",
            "10.80.0.0/255.255.224.0",
            "127.0.0.1",
            "db-clients.internal",
        ] {
            assert!(AppUser::from_secret(SECRET, host).is_ok(), "{host}");
        }
        for host in [
            "",
            "10.%' OR '1'='1",
            "a b",
            "x;DROP USER root",
            &"1".repeat(256),
        ] {
            assert!(AppUser::from_secret(SECRET, host).is_err(), "{host}");
        }
    }

    #[test]
    fn quotes_in_names_read_from_the_server_stay_inside_their_literal() {
        assert_eq!(account("shop_app", "it's"), "'shop_app'@'it''s'");
        assert_eq!(identifier("odd`name"), "`odd``name`");
        assert_eq!(literal("back\\slash"), "'back\\\\slash'");
    }
}
