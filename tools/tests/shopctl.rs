//! `shopctl migrate`, the local way to run the migrations, runs the data steps after them:
//! it folds stored emails and refuses, naming them, accounts that would collide.

use sqlx::MySqlPool;

/// `DATABASE_URL` (the tests' registry database) pointed at this test's own database.
async fn database_url(pool: &MySqlPool) -> String {
    let name: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .unwrap();
    let registry = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (base, query) = match registry.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (registry.as_str(), String::new()),
    };
    let server = base.rsplit_once('/').expect("a database path").0;
    format!("{server}/{name}{query}")
}

async fn shopctl_migrate(pool: &MySqlPool) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shopctl"))
        .arg("migrate")
        .env("DATABASE_URL", database_url(pool).await)
        .output()
        .await
        .expect("run shopctl")
}

/// Applied by the SQL migrations alone (as `#[sqlx::test]` does): the fold has not run.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn shopctl_migrate_folds_emails_and_names_collisions(pool: MySqlPool) {
    for (id, email) in [
        (1, "ada@example.com"),
        (2, "\u{ff41}\u{ff44}\u{ff41}@example.com"),
        (3, "zoe\u{308}@example.org"),
    ] {
        sqlx::query("INSERT INTO users (id, name, email, password_hash) VALUES (?, 'U', ?, 'x')")
            .bind(id)
            .bind(email)
            .execute(&pool)
            .await
            .unwrap();
    }

    let refused = shopctl_migrate(&pool).await;
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("user 1 (\"ada@example.com\")")
            && message.contains("user 2 (\"\u{ff41}\u{ff44}\u{ff41}@example.com\")"),
        "{message}"
    );

    sqlx::query("UPDATE users SET email = 'ada.two@example.com' WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap();
    let applied = shopctl_migrate(&pool).await;
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let zoe: String = sqlx::query_scalar("SELECT CAST(email AS CHAR) FROM users WHERE id = 3")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(zoe, "zo\u{eb}@example.org");
}
