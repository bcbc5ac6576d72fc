//! Direct invocations by an operator: creating the first admin, and running the migrations
//! outside a deploy.

mod common;

use std::time::Duration;

use common::http;
use serde_json::json;
use sqlx::MySqlPool;

const BUDGET: Duration = Duration::from_secs(30);

async fn user(pool: &MySqlPool, email: &str) -> Option<(u64, String, String, String)> {
    sqlx::query_as("SELECT id, name, CAST(role AS CHAR), password_hash FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn create_admin_makes_an_admin_who_can_log_in(pool: MySqlPool) {
    let event = json!({"create_admin": {
        "email": "  Owner@Shop.Example ",
        "password": "correct horse battery",
        "name": "Shop Owner",
    }});

    let answer = migrate::handle(event, &pool, &http(), BUDGET)
        .await
        .unwrap();

    let (id, name, role, hash) = user(&pool, "owner@shop.example").await.expect("created");
    assert_eq!(
        answer,
        json!({ "admin_id": id }),
        "only the id, never the password"
    );
    assert_eq!((name.as_str(), role.as_str()), ("Shop Owner", "admin"));
    assert!(
        platform::password::verify("correct horse battery".into(), Some(hash))
            .await
            .unwrap()
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn create_admin_promotes_an_existing_account(pool: MySqlPool) {
    let customer_id = sqlx::query(
        "INSERT INTO users (name, email, password_hash) VALUES ('Cus', 'cus@shop.example', 'x')",
    )
    .execute(&pool)
    .await
    .unwrap()
    .last_insert_id();
    let event =
        json!({"create_admin": {"email": "cus@shop.example", "password": "a new password"}});

    let answer = migrate::handle(event, &pool, &http(), BUDGET)
        .await
        .unwrap();

    assert_eq!(answer["admin_id"], customer_id);
    let (_, name, role, _) = user(&pool, "cus@shop.example").await.unwrap();
    assert_eq!((name.as_str(), role.as_str()), ("Cus", "admin"));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn bad_admin_requests_change_nothing_and_never_echo_the_password(pool: MySqlPool) {
    let password = "s3cret-value-never-shown";
    for admin in [
        json!({"email": "owner@shop.example", "password": "short"}),
        json!({"email": "not-an-email", "password": password}),
        json!({"email": "owner@shop.example", "password": password, "role": "admin"}),
        json!({"email": "owner@shop.example", "password": 12345678}),
        json!({"password": password}),
    ] {
        let error = migrate::handle(json!({ "create_admin": admin }), &pool, &http(), BUDGET)
            .await
            .unwrap_err()
            .to_string();
        assert!(!error.contains(password), "{error}");
        assert!(!error.contains("12345678"), "{error}");
    }
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[sqlx::test(migrations = false)]
async fn migrate_on_demand_applies_the_migrations(pool: MySqlPool) {
    let answer = migrate::handle(json!({"migrate": {}}), &pool, &http(), BUDGET)
        .await
        .unwrap();

    assert_eq!(
        answer,
        json!({ "schema_version": migrate::schema_version() })
    );
    assert!(common::tables(&pool).await.iter().any(|t| t == "users"));
}
