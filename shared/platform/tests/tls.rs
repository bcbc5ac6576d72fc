//! Verified TLS to the database, configured as on Lambda (the credentials in Secrets
//! Manager, the mode and the trusted authorities from the environment), against a MariaDB
//! of its own whose certificate a test CA signed (`.ci/with-tls-db`, run by `make test`).

use std::collections::HashMap;

use aws_sdk_secretsmanager::config::{Credentials, Region};
use platform::config::Config;
use serde_json::json;
use sqlx::Connection;

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set; `make test` runs this under .ci/with-tls-db and .ci/with-moto")
    })
}

async fn secret() -> String {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(required("MOTO_ENDPOINT"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(format!("shop-tls-{nanos}"))
        .secret_string(json!({"username": "root", "password": ""}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

/// Connects with the configuration the functions would build from this environment, and
/// returns the session's TLS version, or why the connection was refused.
async fn connect(ssl_mode: &str, ssl_ca: Option<String>) -> Result<String, String> {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DB_SECRET_ARN", secret().await),
        ("DB_HOST", "127.0.0.1".into()),
        ("DB_PORT", required("TLS_DB_PORT")),
        ("DB_NAME", "mysql".into()),
        ("DB_SSL_MODE", ssl_mode.into()),
        ("JWT_SECRET", "j".repeat(40)),
        ("AWS_ENDPOINT_URL", required("MOTO_ENDPOINT")),
        ("AWS_REGION", "us-east-1".into()),
    ]);
    if let Some(ca) = ssl_ca {
        vars.insert("DB_SSL_CA", ca);
    }
    let config = Config::load_from(|name| vars.get(name).cloned())
        .await
        .expect("configuration");
    let mut conn = sqlx::MySqlConnection::connect_with(&config.database.connect_options())
        .await
        .map_err(|e| e.to_string())?;
    let (_, version): (String, String) = sqlx::query_as("SHOW STATUS LIKE 'Ssl_version'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    Ok(version)
}

#[tokio::test]
async fn verify_identity_accepts_the_right_authority_and_refuses_any_other() {
    let right = required("TLS_DB_CA");
    let wrong = required("TLS_DB_WRONG_CA");

    let version = connect("verify_identity", Some(right.clone()))
        .await
        .expect("the right CA is accepted");
    assert!(version.starts_with("TLSv1."), "{version}");
    assert!(connect("verify_ca", Some(right)).await.is_ok());

    for (ca, why) in [
        (Some(wrong), "an unrelated CA"),
        (
            Some("rds".into()),
            "the RDS bundle: this server is not an RDS endpoint",
        ),
        (Some("system".into()), "the public roots"),
        (None, "no CA given, so the public roots"),
    ] {
        let refused = connect("verify_identity", ca).await;
        assert!(refused.is_err(), "{why} must not verify this server");
    }
}

#[tokio::test]
async fn required_encrypts_without_verifying() {
    // What an existing server without its CA gets: encryption, no identity check.
    let version = connect("required", Some(required("TLS_DB_WRONG_CA")))
        .await
        .unwrap();
    assert!(version.starts_with("TLSv1."), "{version}");
}

#[test]
fn the_shipped_rds_bundle_holds_every_kind_of_regional_root() {
    let pem = String::from_utf8_lossy(platform::config::RDS_CA_BUNDLE);
    let count = pem.matches("-----BEGIN CERTIFICATE-----").count();
    assert!(count >= 80, "{count} certificates");
    for root in [
        "eu-west-1 Root CA RSA2048 G1",
        "us-east-1 Root CA RSA4096 G1",
        "ap-southeast-2 Root CA ECC384 G1",
    ] {
        assert!(pem.contains(&format!("Amazon RDS {root}")), "{root}");
    }
}
