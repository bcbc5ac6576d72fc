//! Configuration from Secrets Manager, against moto's server (started by `make test`).

use std::collections::HashMap;

use aws_sdk_secretsmanager::config::{Credentials, Region};
use platform::config::{Config, ConfigError};
use serde_json::json;

fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT must name a running moto server; `make test` starts one")
}

async fn client() -> aws_sdk_secretsmanager::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

async fn create_secret(value: String) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    client()
        .await
        .create_secret()
        .name(format!("shop-test-{nanos}"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret in moto")
        .arn()
        .unwrap()
        .to_string()
}

fn test_server() -> (String, u16) {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let options: sqlx::mysql::MySqlConnectOptions = url.parse().unwrap();
    (options.get_host().to_string(), options.get_port())
}

fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    map.insert("AWS_ENDPOINT_URL".into(), moto_endpoint());
    map.insert("AWS_REGION".into(), "us-east-1".into());
    move |name| map.get(name).cloned()
}

#[tokio::test]
async fn database_and_signing_key_come_from_secrets_manager() {
    let (host, port) = test_server();
    let db_arn = create_secret(
        json!({"username": "root", "password": "", "host": host, "port": port, "dbname": "mysql"})
            .to_string(),
    )
    .await;
    let jwt_arn = create_secret("k".repeat(48)).await;

    let config = Config::load_from(env(&[
        ("DB_SECRET_ARN", db_arn),
        ("JWT_SECRET_ARN", jwt_arn),
        // The local MariaDB has no TLS; on AWS the default is `required`.
        ("DB_SSL_MODE", "disabled".into()),
    ]))
    .await
    .expect("configuration from Secrets Manager");
    assert_eq!(config.jwt_secret.expose(), "k".repeat(48));
    assert_eq!(
        format!("{:?}", config.jwt_secret),
        "Secret(..)",
        "never printed"
    );

    let state = web::state::AppState::new(&config, Default::default());
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .expect("connects with the secret's credentials");
    assert_eq!(one, 1);
}

#[tokio::test]
async fn rds_managed_secrets_take_host_and_database_from_the_environment() {
    let (host, port) = test_server();
    let db_arn = create_secret(json!({"username": "root", "password": ""}).to_string()).await;
    let config = Config::load_from(env(&[
        ("DB_SECRET_ARN", db_arn),
        ("DB_HOST", host),
        ("DB_PORT", port.to_string()),
        ("DB_NAME", "mysql".into()),
        ("DB_SSL_MODE", "disabled".into()),
        ("JWT_SECRET", "j".repeat(40)),
    ]))
    .await
    .unwrap();
    let state = web::state::AppState::new(&config, Default::default());
    let db: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&state.pool)
        .await
        .unwrap();
    assert_eq!(db, "mysql");
}

#[tokio::test]
async fn missing_or_weak_settings_stop_the_cold_start_with_a_clear_error() {
    let missing = Config::load_from(env(&[
        (
            "DB_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".into(),
        ),
        ("JWT_SECRET", "j".repeat(40)),
    ]))
    .await;
    assert!(matches!(missing, Err(ConfigError::Secret { .. })));

    let weak = Config::load_from(env(&[
        ("DATABASE_URL", "mysql://root@127.0.0.1/shop".into()),
        ("JWT_SECRET", "short".into()),
    ]))
    .await;
    assert!(matches!(
        weak,
        Err(ConfigError::Invalid {
            name: "JWT_SECRET",
            ..
        })
    ));

    let none = Config::load_from(env(&[("JWT_SECRET", "j".repeat(40))])).await;
    assert!(matches!(none, Err(ConfigError::Missing("DATABASE_URL"))));

    let local = Config::load_from(env(&[
        ("DATABASE_URL", "mysql://root@127.0.0.1/shop".into()),
        ("JWT_SECRET", "j".repeat(40)),
        ("TOKEN_TTL_SECONDS", "900".into()),
    ]))
    .await
    .unwrap();
    assert_eq!(local.token_ttl.as_secs(), 900);
}

/// RDS rotates the master password: the first request after it fails with 503, the
/// credentials are re-read from the secret, and the next request works again.
#[tokio::test]
async fn a_rotated_database_password_is_picked_up_without_a_restart() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let (host, port) = test_server();
    let root = sqlx::MySqlPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    let user = format!("rotation_{}", std::process::id());
    sqlx::query(&format!("DROP USER IF EXISTS '{user}'@'%'"))
        .execute(&root)
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'first-password'"
    ))
    .execute(&root)
    .await
    .unwrap();
    let secret = |password: &str| {
        json!({"username": user, "password": password, "host": host, "port": port, "dbname": "information_schema"})
            .to_string()
    };
    let arn = create_secret(secret("first-password")).await;
    let config = Config::load_from(env(&[
        ("DB_SECRET_ARN", arn.clone()),
        ("DB_SSL_MODE", "disabled".into()),
        ("JWT_SECRET", "j".repeat(40)),
    ]))
    .await
    .unwrap();
    let state = web::state::AppState::new(&config, Default::default());
    let routes = axum::Router::new().route(
        "/ping",
        axum::routing::get(
            |axum::extract::State(state): axum::extract::State<web::state::AppState>| async move {
                sqlx::query("SELECT 1")
                    .execute(&state.pool)
                    .await
                    .map(|_| "pong")
                    .map_err(web::error::ApiError::from)
            },
        ),
    );
    let router = web::router::finish(routes, state);
    let ping = || async {
        let request = Request::get("/ping").body(Body::empty()).unwrap();
        router
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ping().await, 200);

    // Rotation: a new password in the database and in the secret; old sessions end.
    sqlx::query(&format!(
        "ALTER USER '{user}'@'%' IDENTIFIED BY 'second-password'"
    ))
    .execute(&root)
    .await
    .unwrap();
    client()
        .await
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(secret("second-password"))
        .send()
        .await
        .unwrap();
    let sessions: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM information_schema.processlist WHERE user = ?")
            .bind(&user)
            .fetch_all(&root)
            .await
            .unwrap();
    for id in sessions {
        let _ = sqlx::query(&format!("KILL {id}")).execute(&root).await;
    }
    // Past the time a pooled connection is trusted without a ping, as between the requests
    // of an instance, so the ended sessions are found out before use.
    tokio::time::sleep(platform::db::TRUSTED_IDLE + std::time::Duration::from_millis(200)).await;

    assert_eq!(ping().await, 503, "the stale password is refused once");
    assert_eq!(ping().await, 200, "then the rotated one is used");
    sqlx::query(&format!("DROP USER '{user}'@'%'"))
        .execute(&root)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rotated_signing_key_reaches_running_instances_without_a_deploy() {
    let (host, port) = test_server();
    let key_arn = create_secret("a".repeat(48)).await;
    let config = Config::load_from(env(&[
        ("DATABASE_URL", format!("mysql://root@{host}:{port}/mysql")),
        ("JWT_SECRET_ARN", key_arn.clone()),
        ("SECRETS_REFRESH_SECONDS", "1".into()),
    ]))
    .await
    .unwrap();
    let state = web::state::AppState::new(&config, Default::default());
    let account = domain::users::Account {
        id: 7,
        role: domain::role::Role::Customer,
        token_version: 0,
    };
    let old = state.tokens.issue(&account).await.unwrap().token;
    assert!(state.tokens.verify(&old).await.is_ok());

    client()
        .await
        .put_secret_value()
        .secret_id(&key_arn)
        .secret_string("b".repeat(48))
        .send()
        .await
        .unwrap();
    // Until the refresh is due the instance keeps its key...
    assert!(state.tokens.verify(&old).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // ...then it reads the new one: tokens of the old key are refused, new ones work.
    assert!(state.tokens.verify(&old).await.is_err());
    let new = state.tokens.issue(&account).await.unwrap().token;
    assert!(state.tokens.verify(&new).await.is_ok());

    // A key too short to be safe is not taken: the instance keeps the one it has.
    client()
        .await
        .put_secret_value()
        .secret_id(&key_arn)
        .secret_string("short")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(state.tokens.verify(&new).await.is_ok());
}
