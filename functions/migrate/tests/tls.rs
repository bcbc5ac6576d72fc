//! A deploy over verified TLS, as `DbSslMode=auto` makes every deploy: against a MariaDB
//! that speaks TLS with a certificate a test authority signed (`.ci/with-tls-db`, run by
//! `make test`). With the authority that signed it, the migrations run and the
//! application user is made; with another, the deploy fails at once and says which
//! parameters to look at, instead of waiting minutes for a database that will never verify.

mod common;

use std::time::{Duration, Instant};

use common::{ResponseEndpoint, custom_resource_event, http};
use migrate::{AppUser, Connect};
use serde_json::json;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::{ConnectOptions, MySqlPool};

const BUDGET: Duration = Duration::from_secs(60);
const PASSWORD: &str = "tls-app-password-0123456";

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set; `make test` runs this under .ci/with-tls-db")
    })
}

/// The TLS server's root account, verifying the server against `ca`.
fn options(ca: &str) -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(required("TLS_DB_PORT").parse().unwrap())
        .username("root")
        .ssl_mode(MySqlSslMode::VerifyIdentity)
        .ssl_ca(ca)
}

struct Deploy {
    pool: MySqlPool,
    user: String,
}

impl Connect for Deploy {
    async fn pool(&self) -> Result<MySqlPool, String> {
        Ok(self.pool.clone())
    }

    async fn app_user(&self) -> Result<Option<AppUser>, String> {
        let secret = json!({"username": self.user, "password": PASSWORD}).to_string();
        AppUser::from_secret(&secret, "127.0.0.1").map(Some)
    }
}

#[tokio::test]
async fn a_deploy_verifies_the_database_certificate_and_says_what_to_change_when_it_cannot() {
    let (ca, wrong_ca) = (required("TLS_DB_CA"), required("TLS_DB_WRONG_CA"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let (schema, user) = (format!("shop_tls_{nanos}"), format!("tls_app_{nanos}"));
    let mut admin = options(&ca)
        .connect()
        .await
        .expect("root over verified TLS");
    sqlx::raw_sql(&format!("CREATE DATABASE {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();

    // The authority that signed the server's certificate: migrations, then the user.
    let verified = Deploy {
        pool: platform::db::pool_with(options(&ca).database(&schema), 2),
        user: user.clone(),
    };
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event("Create", &endpoint.url(), None);
    let sent = migrate::handle(event, &verified, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(sent["Status"], "SUCCESS", "{sent}");
    assert_eq!(endpoint.next().await.body["Status"], "SUCCESS");
    let app = options(&ca)
        .database(&schema)
        .username(&user)
        .password(PASSWORD);
    let mut app = app.connect().await.expect("the application user, verified");
    let cipher: (String, String) = sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_version'")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert!(cipher.1.starts_with("TLS"), "{cipher:?}");
    drop(app);

    // Another authority: refused at the handshake, reported at once with the way out.
    let unverified = Deploy {
        pool: platform::db::pool_with(options(&wrong_ca).database(&schema), 2),
        user: user.clone(),
    };
    let started = Instant::now();
    let event = custom_resource_event("Update", &endpoint.url(), None);
    let sent = migrate::handle(event, &unverified, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(sent["Status"], "FAILED", "{sent}");
    let reason = sent["Reason"].as_str().unwrap();
    assert!(
        reason.contains("DbSslCa") && reason.contains("DbSslMode=required"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no waiting for a certificate to change: {:?}",
        started.elapsed()
    );

    sqlx::raw_sql(&format!(
        "DROP DATABASE {schema}; DROP USER '{user}'@'127.0.0.1';"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
}
