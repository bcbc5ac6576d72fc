//! Emails are compared in Unicode NFKC and lower case: a deploy folds the emails stored
//! before, once, and refuses to go on (naming them) when two accounts would collide.

mod common;

use std::time::Duration;

use common::{ResponseEndpoint, custom_resource_event, http};
use serde_json::json;
use sqlx::MySqlPool;

const BUDGET: Duration = Duration::from_secs(30);

/// The schema as deployed before emails were folded: the migrations older than the fold.
async fn schema_before_the_fold(pool: &MySqlPool) {
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let earlier = std::env::temp_dir().join(format!(
        "migrations-before-fold-{}-{}",
        std::process::id(),
        pool.connect_options().get_database().unwrap_or_default()
    ));
    std::fs::create_dir_all(&earlier).unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.as_str() < "20261204000001" {
            std::fs::copy(&path, earlier.join(name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap()
        .run(pool)
        .await
        .unwrap();
    std::fs::remove_dir_all(&earlier).unwrap();
}

/// Users as the code before stored them (trimmed and lower-cased only).
async fn legacy_users(pool: &MySqlPool, emails: &[(u64, &str)]) {
    let hash = platform::password::hash("correct horse".into())
        .await
        .unwrap();
    for (id, email) in emails {
        sqlx::query("INSERT INTO users (id, name, email, password_hash) VALUES (?, 'U', ?, ?)")
            .bind(id)
            .bind(email)
            .bind(&hash)
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn emails(pool: &MySqlPool) -> Vec<(u64, String)> {
    sqlx::query_as("SELECT id, CAST(email AS CHAR) FROM users ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn recorded(pool: &MySqlPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM data_migrations WHERE name = ?")
        .bind(domain::schema::EMAIL_FOLD)
        .fetch_one(pool)
        .await
        .unwrap()
}

const NFD_ZOE: &str = "zoe\u{308}@example.org";
const NFC_ZOE: &str = "zo\u{eb}@example.org";
const FULL_WIDTH_BOB: &str = "\u{ff42}\u{ff4f}\u{ff42}\u{ff20}\u{ff45}\u{ff58}\u{ff41}\u{ff4d}\u{ff50}\u{ff4c}\u{ff45}\u{ff0e}\u{ff43}\u{ff4f}\u{ff4d}";

#[sqlx::test(migrations = false)]
async fn a_deploy_folds_stored_emails_once(pool: MySqlPool) {
    schema_before_the_fold(&pool).await;
    legacy_users(
        &pool,
        &[(1, "ada@example.com"), (2, NFD_ZOE), (3, FULL_WIDTH_BOB)],
    )
    .await;

    let answer = migrate::handle(json!({"migrate": {}}), &pool, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(answer, json!({"schema_version": migrate::schema_version()}));
    assert_eq!(
        emails(&pool).await,
        vec![
            (1, "ada@example.com".to_string()),
            (2, NFC_ZOE.to_string()),
            (3, "bob@example.com".to_string()),
        ]
    );
    assert_eq!(recorded(&pool).await, 1);
    // Every spelling now reaches the account.
    for (spelling, id) in [("ZOE\u{308}@example.org", 2), ("Bob@Example.com", 3)] {
        let credentials =
            serde_json::from_value(json!({"email": spelling, "password": "correct horse"}))
                .unwrap();
        let client = domain::users::ClientAddress::parse("192.0.2.1");
        let account = domain::users::login(&pool, credentials, &client)
            .await
            .unwrap();
        assert_eq!(account.id, id, "{spelling}");
    }

    // Recorded: the next deploy does not scan the users again.
    legacy_users(&pool, &[(4, "\u{ff43}at@example.com")]).await;
    migrate::handle(json!({"migrate": {}}), &pool, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(emails(&pool).await[3].1, "\u{ff43}at@example.com");
}

#[sqlx::test(migrations = false)]
async fn accounts_that_would_collide_stop_the_deploy_and_are_named(pool: MySqlPool) {
    schema_before_the_fold(&pool).await;
    legacy_users(
        &pool,
        &[
            (1, "ada@example.com"),
            (2, "\u{ff41}\u{ff44}\u{ff41}@example.com"),
            (3, NFC_ZOE),
            (4, NFD_ZOE),
            (5, FULL_WIDTH_BOB),
        ],
    )
    .await;
    let before = emails(&pool).await;

    // The deploy's custom resource fails, and says why.
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event(
        "Update",
        &endpoint.url(),
        Some("shop-api-DatabaseMigrations"),
    );
    migrate::handle(event, &pool, &http(), BUDGET)
        .await
        .unwrap();
    let answer = endpoint.next().await.body;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap();
    for named in [
        "user 1 (\"ada@example.com\")",
        "user 2 (\"\u{ff41}\u{ff44}\u{ff41}@example.com\")",
        "user 3",
        "user 4",
        NFC_ZOE,
    ] {
        assert!(reason.contains(named), "{named} in {reason}");
    }
    assert!(!reason.contains("user 5"), "{reason}");
    // An operator's run says the same.
    let error = migrate::handle(json!({"migrate": {}}), &pool, &http(), BUDGET)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("user 1") && error.contains("user 4"),
        "{error}"
    );
    // Nothing changed, nothing recorded.
    assert_eq!(emails(&pool).await, before);
    assert_eq!(recorded(&pool).await, 0);

    // Once a person has renamed them, the next run folds the rest.
    sqlx::query("UPDATE users SET email = 'ada.two@example.com' WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET email = 'zoe.two@example.org' WHERE id = 4")
        .execute(&pool)
        .await
        .unwrap();
    migrate::handle(json!({"migrate": {}}), &pool, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(emails(&pool).await[4].1, "bob@example.com");
    assert_eq!(recorded(&pool).await, 1);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn create_admin_finds_the_account_under_any_spelling(pool: MySqlPool) {
    legacy_users(&pool, &[(7, "ada@example.com")]).await;
    let event = json!({"create_admin": {
        "email": "\u{ff21}\u{ff24}\u{ff21}@EXAMPLE.com",
        "password": "a new password",
    }});
    let answer = migrate::handle(event, &pool, &http(), BUDGET)
        .await
        .unwrap();
    assert_eq!(answer, json!({"admin_id": 7}));
    assert_eq!(
        emails(&pool).await,
        vec![(7, "ada@example.com".to_string())]
    );
}
