//! The application user a deploy creates: data rights on the shop's tables and nothing
//! more (not on the migrations' record), only from its host pattern, with the password
//! kept in a secret of its own (moto's Secrets Manager here). Every run brings its grants
//! in step with the tables the migrations have made.

mod common;

use std::time::Duration;

use aws_sdk_secretsmanager::config::{Credentials, Region};
use common::{ResponseEndpoint, custom_resource_event, http};
use migrate::{AppUser, Connect};
use serde_json::json;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, MySqlConnection, MySqlPool};

const BUDGET: Duration = Duration::from_secs(30);

/// The database of the test, and the application user's secret and host pattern as a
/// deploy reads them.
struct Deploy {
    pool: MySqlPool,
    secret_arn: String,
    host: String,
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
        AppUser::from_secret(&text, &self.host).map(Some)
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

async fn database_of(pool: &MySqlPool) -> String {
    sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .unwrap()
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

/// A user name no other test uses: users are the server's, not one database's.
fn unique_user() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("app_{}", nanos % 1_000_000_000_000)
}

async fn secret_for(user: &str, password: &str) -> String {
    secrets()
        .await
        .create_secret()
        .name(format!("shop-app-user-{user}"))
        .secret_string(json!({"username": user, "password": password}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

/// One deploy (a custom resource request), which must succeed.
async fn deploy(deploy: &Deploy, request: &str) {
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event(request, &endpoint.url(), None);
    let sent = migrate::handle(event, deploy, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(sent["Status"], "SUCCESS", "{sent}");
    assert_eq!(endpoint.next().await.body["Status"], "SUCCESS");
}

/// The hosts the server knows `user` at.
async fn hosts(pool: &MySqlPool, user: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ? ORDER BY Host")
        .bind(user)
        .fetch_all(pool)
        .await
        .unwrap()
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
    let user = unique_user();
    // Quotes and backslashes too: the password goes into SQL as an escaped literal.
    let first = "it's-a\\first-password-0123";
    let secret_arn = secret_for(&user, first).await;
    let deploy_of = Deploy {
        pool: pool.clone(),
        secret_arn: secret_arn.clone(),
        host: "127.0.0.1".into(),
    };
    deploy(&deploy_of, "Create").await;

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
    // None on the migrations' record: the application cannot fake or erase the schema's
    // history (1142: command denied).
    for sql in [
        "SELECT COUNT(*) FROM _sqlx_migrations",
        "DELETE FROM _sqlx_migrations",
        "UPDATE _sqlx_migrations SET success = 0",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (1, 'x', 1, '', 0)",
        "SELECT COUNT(*) FROM data_migrations",
        "DELETE FROM data_migrations",
    ] {
        assert_eq!(refusal(&mut app, sql).await, Some(1142), "{sql}");
    }
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
    deploy(&deploy_of, "Update").await;
    assert!(connect_as(&pool, &user, second).await.is_ok());
    assert!(connect_as(&pool, &user, first).await.is_err());

    sqlx::query(&format!("DROP USER '{user}'@'127.0.0.1'"))
        .execute(&pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn the_user_connects_only_from_its_host_pattern_and_older_hosts_are_dropped(pool: MySqlPool) {
    let user = unique_user();
    let password = "a-password-for-hosts-0123";
    // What earlier deploys left: the user at any host, with rights on the whole schema,
    // the migrations' record included.
    sqlx::raw_sql(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
         GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{user}'@'%';",
        db = database_of(&pool).await
    ))
    .execute(&pool)
    .await
    .unwrap();
    assert!(connect_as(&pool, &user, password).await.is_ok());

    // The functions' subnets only: this test connects from 127.0.0.1, which is not one.
    let mut deploy_of = Deploy {
        pool: pool.clone(),
        secret_arn: secret_for(&user, password).await,
        host: "10.80.0.0/255.255.224.0".into(),
    };
    deploy(&deploy_of, "Update").await;
    assert_eq!(hosts(&pool, &user).await, ["10.80.0.0/255.255.224.0"]);
    let refused = connect_as(&pool, &user, password).await.unwrap_err();
    let code = refused
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|e| e.number());
    // 1045 or 1130 as a rule; MariaDB answers some logins of a user it has at no matching
    // host with 1698, as if the account took no password.
    assert!(matches!(code, Some(1045 | 1130 | 1698)), "{refused}");
    let schema_wide: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mysql.db WHERE User = ?")
        .bind(&user)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(schema_wide, 0, "no right on the schema as a whole is left");

    // A pattern that takes this host in (the netmask form MySQL and MariaDB both read).
    deploy_of.host = "127.0.0.0/255.0.0.0".into();
    deploy(&deploy_of, "Update").await;
    assert_eq!(hosts(&pool, &user).await, ["127.0.0.0/255.0.0.0"]);
    let mut app = connect_as(&pool, &user, password).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(count, 0);
    assert_eq!(
        refusal(&mut app, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        Some(1142)
    );
    drop(app);

    sqlx::query(&format!("DROP USER '{user}'@'127.0.0.0/255.0.0.0'"))
        .execute(&pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn every_run_grants_new_tables_and_takes_back_the_ones_gone(pool: MySqlPool) {
    let user = unique_user();
    let password = "a-password-for-tables-0123";
    let deploy_of = Deploy {
        pool: pool.clone(),
        secret_arn: secret_for(&user, password).await,
        host: "127.0.0.1".into(),
    };
    deploy(&deploy_of, "Create").await;
    let granted = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT CAST(Table_name AS CHAR) FROM mysql.tables_priv
             WHERE User = ? AND Db = DATABASE() ORDER BY 1",
        )
        .bind(&user)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let before = granted().await;
    assert!(
        before.contains(&"orders".to_string()) && !before.contains(&"_sqlx_migrations".to_string())
    );
    assert_eq!(
        before.len(),
        common::tables(&pool).await.len() - 2,
        "every table but the migrations' two records"
    );

    // A table a later migration makes: refused until the next run grants it.
    sqlx::query("CREATE TABLE gift_cards (id INT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    let mut app = connect_as(&pool, &user, password).await.unwrap();
    assert_eq!(
        refusal(&mut app, "INSERT INTO gift_cards VALUES (1)").await,
        Some(1142)
    );
    deploy(&deploy_of, "Update").await;
    sqlx::query("INSERT INTO gift_cards VALUES (1)")
        .execute(&mut app)
        .await
        .unwrap();
    drop(app);

    // A table a migration drops: its grant goes too, so a table of that name made later
    // is not readable until a run grants it.
    sqlx::query("DROP TABLE gift_cards")
        .execute(&pool)
        .await
        .unwrap();
    deploy(&deploy_of, "Update").await;
    assert_eq!(granted().await, before);

    sqlx::query(&format!("DROP USER '{user}'@'127.0.0.1'"))
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
        let err = AppUser::from_secret(&text, "127.0.0.1").unwrap_err();
        assert!(
            !err.contains("long-enough-password-1") && !err.contains("short\""),
            "{err}"
        );
    }
    drop(pool);
}
