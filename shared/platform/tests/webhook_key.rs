//! The key that seals webhook secrets: from Secrets Manager (moto's server, started by
//! `make test`) when `WEBHOOK_KEY_ARN` is set, else from `WEBHOOK_KEY`.

use platform::aws::webhook_key;
use platform::config::ConfigError;
use platform::crypto::SealingKey;

fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT must name a running moto server; `make test` starts one")
}

fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn the_key_comes_from_secrets_manager_on_aws() {
    let moto = env(vec![
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_REGION", "us-east-1".into()),
    ]);
    let client = aws_sdk_secretsmanager::Client::new(&platform::aws::sdk_config(&moto).await);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let value = "a-generated-secret-string-of-forty-chars!";
    let arn = client
        .create_secret()
        .name(format!("shop-webhook-key-{nanos}"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret in moto")
        .arn()
        .unwrap()
        .to_string();
    let var = env(vec![
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("WEBHOOK_KEY_ARN", arn.clone()),
        // Ignored when the ARN is set.
        (
            "WEBHOOK_KEY",
            "local-key-that-must-not-be-used-0123456789".into(),
        ),
    ]);
    let key = webhook_key(&var).await.unwrap();
    assert_eq!(key.expose(), value);
    // The same secret seals and opens across instances.
    let a = SealingKey::from_secret(&key).unwrap();
    let b = SealingKey::from_secret(&webhook_key(&var).await.unwrap()).unwrap();
    assert_eq!(b.open(&a.seal(b"k", b"c"), b"c").unwrap(), b"k");

    let missing = env(vec![
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("WEBHOOK_KEY_ARN", format!("{arn}-gone")),
    ]);
    assert!(matches!(
        webhook_key(&missing).await,
        Err(ConfigError::Secret { .. })
    ));
}

#[tokio::test]
async fn locally_the_key_comes_from_the_environment() {
    let var = env(vec![(
        "WEBHOOK_KEY",
        "local-webhook-key-0123456789abcdefghij".into(),
    )]);
    assert_eq!(
        webhook_key(&var).await.unwrap().expose(),
        "local-webhook-key-0123456789abcdefghij"
    );
    assert!(matches!(
        webhook_key(&env(vec![])).await,
        Err(ConfigError::Missing("WEBHOOK_KEY"))
    ));
}
