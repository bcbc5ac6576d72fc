//! The application user a deploy creates: data rights on the shop's schema and nothing
//! more, with the password kept in a secret of its own (moto's Secrets Manager here).

mod common;

use std::time::Duration;

use aws_sdk_secretsmanager::config::{Credentials, Region};
use common::{ResponseEndpoint, custom_resource_event, http};
use migrate::{AppUser, Connect};
use serde_json::json;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, MySqlConnection, MySqlPool};

const BUDGET: Duration = Duration::from_secs(30);

/// The database of the test, and the application user's secret as a deploy reads it.
struct Deploy {
    pool: MySqlPool,
    secret_arn: String,
}

impl Connect for Deploy {
    async fn pool(&self) -> Result<MySqlPool, String> {
        Ok(self.pool.clone())
    }

    async fn app_user(&self) -> Result<Option<AppUser>, String> {
        let text = secrets()
            .await
            .get_secret_value()
            .secret_id(&self.secret_arn)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .secret_string()
            .unwrap()
            .to_string();
        AppUser::from_secret(&text).map(Some)
    }
}

async fn secrets() -> aws_sdk_secretsmanager::Client {
    let endpoint = std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT must name a running moto server; `make test` starts one");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

/// A connection as `user` to the pool's schema.
async fn connect_as(
    pool: &MySqlPool,
    user: &str,
    password: &str,
) -> Result<MySqlConnection, sqlx::Error> {
    let options: MySqlConnectOptions = pool.connect_options().as_ref().clone();
    options.username(user).password(password).connect().await
}

/// The MySQL error number of a refused statement.
async fn refusal(conn: &mut MySqlConnection, sql: &str) -> Option<u16> {
    let err = sqlx::query(sql).execute(&mut *conn).await.err()?;
    err.as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|e| e.number())
}

#[sqlx::test(migrations = false)]
async fn a_deploy_creates_a_user_that_may_change_data_but_never_the_schema(pool: MySqlPool) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let user = format!("app_{}", nanos % 1_000_000_000_000);
    // Quotes and backslashes too: the password goes into SQL as an escaped literal.
    let first = "it's-a\\first-password-0123";
    let secret_arn = secrets()
        .await
        .create_secret()
        .name(format!("shop-app-user-{nanos}"))
        .secret_string(json!({"username": user, "password": first}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let deploy = Deploy {
        pool: pool.clone(),
        secret_arn: secret_arn.clone(),
    };

    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event("Create", &endpoint.url(), None);
    let sent = migrate::handle(event, &deploy, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(sent["Status"], "SUCCESS", "{sent}");
    assert_eq!(endpoint.next().await.body["Status"], "SUCCESS");

    let mut app = connect_as(&pool, &user, first)
        .await
        .expect("the user logs in");
    // Data: all of it.
    sqlx::query("INSERT INTO categories (name) VALUES ('Books')")
        .execute(&mut app)
        .await
        .unwrap();
    sqlx::query("UPDATE categories SET description = 'Bound' WHERE name = 'Books'")
        .execute(&mut app)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM categories")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(count, 1);
    sqlx::query("DELETE FROM categories")
        .execute(&mut app)
        .await
        .unwrap();
    // The schema: none of it (1142: command denied to user).
    for sql in [
        "DROP TABLE reviews",
        "ALTER TABLE products ADD COLUMN extra INT",
        "CREATE TABLE extra (id INT)",
        "TRUNCATE TABLE orders",
        "CREATE INDEX extra_idx ON products (stock)",
        "DROP DATABASE IF EXISTS mysql",
    ] {
        let code = refusal(&mut app, sql).await;
        assert!(
            matches!(code, Some(1142 | 1044)),
            "{sql} must be refused, got {code:?}"
        );
    }
    // No rights beyond the shop's schema.
    assert!(
        refusal(&mut app, "SELECT COUNT(*) FROM mysql.user")
            .await
            .is_some()
    );
    drop(app);

    // A rotated secret and the next deploy: the new password works, the old one no more.
    let second = "second-password-456789";
    secrets()
        .await
        .put_secret_value()
        .secret_id(&secret_arn)
        .secret_string(json!({"username": user, "password": second}).to_string())
        .send()
        .await
        .unwrap();
    let event = custom_resource_event("Update", &endpoint.url(), None);
    let sent = migrate::handle(event, &deploy, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(sent["Status"], "SUCCESS", "{sent}");
    assert!(connect_as(&pool, &user, second).await.is_ok());
    assert!(connect_as(&pool, &user, first).await.is_err());

    sqlx::query(&format!("DROP USER '{user}'@'%'"))
        .execute(&pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_secret_that_is_not_a_plain_user_fails_the_deploy_without_echoing_it(pool: MySqlPool) {
    for text in [
        json!({"username": "x'; DROP DATABASE shop; --", "password": "long-enough-password-1"})
            .to_string(),
        json!({"username": "app", "password": "short"}).to_string(),
        "not json".to_string(),
    ] {
        let err = AppUser::from_secret(&text).unwrap_err();
        assert!(
            !err.contains("long-enough-password-1") && !err.contains("short\""),
            "{err}"
        );
    }
    drop(pool);
}
