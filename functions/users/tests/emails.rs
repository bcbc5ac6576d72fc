//! Emails are compared and stored after Unicode NFKC and lower-casing: canonically equal
//! spellings (NFC and NFD, full-width forms, any case) are one account everywhere.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::{TestApp, TestResponse};

const NFC_ZOE: &str = "zo\u{eb}@example.org";
const NFD_ZOE: &str = "zoe\u{308}@example.org";
/// "ZOË@EXAMPLE.ORG" in full-width letters, with a decomposed diaeresis.
const WIDE_ZOE: &str = "\u{ff3a}\u{ff2f}\u{ff25}\u{308}\u{ff20}\u{ff25}\u{ff38}\u{ff21}\u{ff2d}\u{ff30}\u{ff2c}\u{ff25}\u{ff0e}\u{ff2f}\u{ff32}\u{ff27}";

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, users::router)
}

async fn register(app: &TestApp, email: &str) -> TestResponse {
    app.post("/users/register")
        .json(json!({"name": "Zoë", "email": email, "password": "password-z"}))
        .send()
        .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> TestResponse {
    app.post("/users/login")
        .json(json!({"email": email, "password": password}))
        .send()
        .await
}

async fn stored_emails(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT CAST(email AS CHAR) FROM users ORDER BY id")
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_spelling_of_an_email_is_one_account(pool: MySqlPool) {
    let app = app(pool);
    let registered = register(&app, NFD_ZOE).await;
    assert_eq!(registered.expect(201)["email"], NFC_ZOE, "stored composed");
    for other in [NFC_ZOE, WIDE_ZOE, "ZO\u{cb}@Example.org"] {
        let duplicate = register(&app, other).await;
        assert_eq!(
            duplicate.problem(409)["type"],
            "/problems/duplicate-email",
            "{other}"
        );
    }
    assert_eq!(stored_emails(&app).await, vec![NFC_ZOE]);
    for spelling in [NFC_ZOE, NFD_ZOE, WIDE_ZOE] {
        let answer = login(&app, spelling, "password-z").await;
        assert_eq!(answer.expect(200)["user"]["email"], NFC_ZOE, "{spelling}");
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_updated_email_is_stored_folded_and_checked_for_duplicates(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com").await.expect(201);
    let zoe = register(&app, "zoe@example.org").await.expect(201).clone();
    let token = login(&app, "zoe@example.org", "password-z")
        .await
        .expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let update = |email: &str| {
        app.put(&format!("/users/{}", zoe["id"]))
            .token(&token)
            .json(json!({"email": email, "current_password": "password-z"}))
    };
    let taken = update("\u{ff21}\u{ff24}\u{ff21}@example.com").send().await;
    taken.problem(409);
    let moved = update(WIDE_ZOE).send().await;
    assert_eq!(moved.expect(200)["email"], NFC_ZOE);
    assert_eq!(
        stored_emails(&app).await,
        vec!["ada@example.com".to_string(), NFC_ZOE.to_string()]
    );
    login(&app, NFD_ZOE, "password-z").await.expect(200);
}

/// Throttling keys on the folded email: switching spellings buys no extra guesses.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn spellings_share_one_throttle(pool: MySqlPool) {
    let app = app(pool);
    register(&app, NFC_ZOE).await.expect(201);
    for spelling in [
        NFC_ZOE,
        NFD_ZOE,
        WIDE_ZOE,
        "ZOE\u{308}@EXAMPLE.ORG",
        NFD_ZOE,
    ] {
        login(&app, spelling, "guess").await.problem(401);
    }
    let refused = login(&app, NFC_ZOE, "password-z").await;
    refused.problem(429);
    let keys: Vec<String> = sqlx::query_scalar("SELECT CAST(email AS CHAR) FROM login_throttle")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(keys, vec![NFC_ZOE]);
}
