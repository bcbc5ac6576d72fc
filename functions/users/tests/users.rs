use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{JWT_SECRET, TestApp, http_api_event, invoke_lambda, lambda_body, rest_api_event};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, users::router)
}

async fn register(app: &TestApp, email: &str, password: &str) -> Value {
    app.post("/users/register")
        .json(json!({"name": "Ada", "email": email, "password": password}))
        .send()
        .await
        .expect(201)
        .clone()
}

async fn login(app: &TestApp, email: &str, password: &str) -> testkit::TestResponse {
    app.post("/users/login")
        .json(json!({"email": email, "password": password}))
        .send()
        .await
}

async fn token(app: &TestApp, email: &str, password: &str) -> String {
    login(app, email, password).await.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn register_stores_an_argon2id_hash_and_never_returns_it(pool: MySqlPool) {
    let app = app(pool);
    let response = app
        .post("/users/register")
        .json(json!({"name": "Ada", "email": "  Ada@Example.COM ", "password": "correct horse"}))
        .send()
        .await;
    let user = response.expect(201).clone();
    let id = user["id"].as_u64().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/users/{id}").as_str())
    );
    assert_eq!(user["email"], "ada@example.com", "trimmed and lower-cased");
    assert_eq!(user["role"], "customer");
    assert_eq!(user["name"], "Ada");
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["created_at", "email", "id", "name", "role", "updated_at"]
    );
    let text = String::from_utf8_lossy(&response.raw);
    assert!(!text.contains("correct horse") && !text.contains("argon2"));

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn duplicate_emails_conflict_in_any_case(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "password-1").await;
    let dup = app
        .post("/users/register")
        .json(json!({"name": "Other", "email": " ADA@example.com", "password": "password-2"}))
        .send()
        .await;
    dup.problem(409);
    assert_eq!(dup.body["type"], "/problems/duplicate-email");

    let bob = register(&app, "bob@example.com", "password-3").await;
    let bob_token = token(&app, "bob@example.com", "password-3").await;
    app.put(&format!("/users/{}", bob["id"]))
        .token(&bob_token)
        .json(json!({"email": "Ada@Example.com", "current_password": "password-3"}))
        .send()
        .await
        .problem(409);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 2);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn registration_input_is_checked(pool: MySqlPool) {
    let app = app(pool);
    let cases = [
        (json!({"email": "a@b.co", "password": "12345678"}), "name"),
        (
            json!({"name": "", "email": "a@b.co", "password": "12345678"}),
            "name",
        ),
        (
            json!({"name": "x".repeat(101), "email": "a@b.co", "password": "12345678"}),
            "name",
        ),
        (
            json!({"name": "A", "email": "not-an-email", "password": "12345678"}),
            "email",
        ),
        (
            json!({"name": "A", "email": "a@", "password": "12345678"}),
            "email",
        ),
        (json!({"name": "A", "password": "12345678"}), "email"),
        (
            json!({"name": "A", "email": "a@b.co", "password": "1234567"}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "password": "p".repeat(129)}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "password": 12345678}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "password": "12345678", "role": "admin"}),
            "role",
        ),
    ];
    for (body, field) in cases {
        app.post("/users/register")
            .json(body)
            .send()
            .await
            .invalid_field(field);
    }
    app.post("/users/register")
        .raw("application/json", "not json")
        .send()
        .await
        .problem(400);
    app.post("/users/register")
        .raw("application/x-www-form-urlencoded", "a=b")
        .send()
        .await
        .problem(415);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn login_issues_a_bearer_token_that_authenticates(pool: MySqlPool) {
    let app = app(pool);
    let user = register(&app, "ada@example.com", "correct horse").await;
    let response = login(&app, " ADA@example.com", "correct horse").await;
    let body = response.expect(200).clone();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["user"]["id"], user["id"]);
    assert!(!String::from_utf8_lossy(&response.raw).contains("argon2"));

    let token = body["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], user["id"].to_string());
    assert_eq!(claims["role"], "customer");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    let me = app
        .get(&format!("/users/{}", user["id"]))
        .token(token)
        .send()
        .await;
    assert_eq!(me.expect(200)["email"], "ada@example.com");
    assert_eq!(me.body["orders"], json!([]));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn wrong_password_and_unknown_email_look_the_same(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;

    let wrong = login(&app, "ada@example.com", "wrong horse").await;
    let unknown = login(&app, "nobody@example.com", "wrong horse").await;
    wrong.problem(401);
    unknown.problem(401);
    assert_eq!(wrong.raw, unknown.raw, "identical bodies");
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );

    // Both verify an argon2 hash: an unknown email is not answered faster. (A bound this
    // loose only fails when one side skips the hash, which is ~100x cheaper.)
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    for i in 0..4 {
        let t = Instant::now();
        login(&app, "ada@example.com", "wrong horse")
            .await
            .problem(401);
        known_times.push(t.elapsed());
        let t = Instant::now();
        login(&app, &format!("nobody{i}@example.com"), "wrong horse")
            .await
            .problem(401);
        unknown_times.push(t.elapsed());
        sqlx::query("DELETE FROM login_throttle")
            .execute(app.pool())
            .await
            .unwrap();
    }
    let (known, unknown) = (median(known_times), median(unknown_times));
    assert!(
        unknown * 2 >= known && known * 2 >= unknown,
        "known {known:?} vs unknown {unknown:?}"
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn five_failures_throttle_the_email_even_for_the_right_password(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;
    for _ in 0..5 {
        login(&app, "ada@example.com", "wrong horse")
            .await
            .problem(401);
    }
    let throttled = login(&app, "ada@example.com", "correct horse").await;
    throttled.problem(429);
    let retry: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");

    // Unknown emails are throttled the same way, so throttling reveals nothing.
    for _ in 0..5 {
        login(&app, "ghost@example.com", "guess").await.problem(401);
    }
    login(&app, "ghost@example.com", "guess").await.problem(429);

    // The window passes: the next attempt is checked again.
    sqlx::query(
        "UPDATE login_throttle SET window_started_at = window_started_at - INTERVAL 16 MINUTE",
    )
    .execute(app.pool())
    .await
    .unwrap();
    login(&app, "ada@example.com", "correct horse")
        .await
        .expect(200);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_successful_login_clears_the_count(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;
    for _ in 0..4 {
        login(&app, "ada@example.com", "wrong horse")
            .await
            .problem(401);
    }
    login(&app, "ada@example.com", "correct horse")
        .await
        .expect(200);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_throttle")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    for _ in 0..5 {
        login(&app, "ada@example.com", "wrong horse")
            .await
            .problem(401);
    }
    login(&app, "ada@example.com", "wrong horse")
        .await
        .problem(429);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_guesses_cannot_exceed_the_limit(pool: MySqlPool) {
    let app = std::sync::Arc::new(app(pool));
    register(&app, "ada@example.com", "correct horse").await;
    let attempts = (0..20).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            login(&app, "ada@example.com", "wrong horse")
                .await
                .status
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 5, "{statuses:?}");
    assert_eq!(throttled, 15);
}

fn forge(header: Value, claims: Value, key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(key),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{signing_input}.{signature}")
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_kind_of_bad_token_is_401(pool: MySqlPool) {
    let app = app(pool);
    let user = register(&app, "ada@example.com", "correct horse").await;
    let id = user["id"].as_u64().unwrap();
    let uri = format!("/users/{id}");
    let now = chrono::Utc::now().timestamp();
    let claims =
        json!({"sub": id.to_string(), "role": "admin", "iat": now, "exp": now + 600, "ver": 0});
    let key = JWT_SECRET.as_bytes();

    // The genuine article works, so the rejections below are about the token alone.
    let good = forge(json!({"alg": "HS256", "typ": "JWT"}), claims.clone(), key);
    app.get(&uri).token(&good).send().await.expect(200);

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(now - 120);
    let mut other_user = claims.clone();
    other_user["sub"] = json!("999999");
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap();
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        let mut c = claims.clone();
        c["exp"] = json!(now + 86_400);
        parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
        parts.join(".")
    };
    let bad_tokens = [
        (
            "wrong key",
            forge(
                json!({"alg": "HS256"}),
                claims.clone(),
                b"another-key-another-key-another-key!!",
            ),
        ),
        ("alg none", unsigned),
        ("HS512", hs512),
        (
            "expired",
            forge(json!({"alg": "HS256"}), expired_claims, key),
        ),
        ("no exp", forge(json!({"alg": "HS256"}), no_exp, key)),
        (
            "unknown user",
            forge(json!({"alg": "HS256"}), other_user, key),
        ),
        ("tampered", tampered),
        ("garbage", "abc.def.ghi".to_string()),
        ("empty", String::new()),
    ];
    for (what, token) in bad_tokens {
        let response = app
            .get(&uri)
            .header("authorization", &format!("Bearer {token}"))
            .send()
            .await;
        assert_eq!(response.status, 401, "{what}");
        response.problem(401);
    }
    app.get(&uri).send().await.problem(401);
    app.get(&uri)
        .header("authorization", &format!("Basic {good}"))
        .send()
        .await
        .problem(401);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn profiles_are_for_their_owner_or_an_admin(pool: MySqlPool) {
    let app = app(pool);
    let ada = register(&app, "ada@example.com", "password-a").await;
    let bob = register(&app, "bob@example.com", "password-b").await;
    let ada_token = token(&app, "ada@example.com", "password-a").await;
    let admin = app.admin().await;

    sqlx::query("INSERT INTO orders (user_id, status, total, created_at, expires_at) VALUES (?, 'pending', 10.50, '2026-01-01', UTC_TIMESTAMP(6) + INTERVAL 1 HOUR), (?, 'paid', 3.00, '2026-02-01', '2026-02-01')")
        .bind(ada["id"].as_u64())
        .bind(ada["id"].as_u64())
        .execute(app.pool())
        .await
        .unwrap();

    let own = app
        .get(&format!("/users/{}", ada["id"]))
        .token(&ada_token)
        .send()
        .await;
    let orders = own.expect(200)["orders"].as_array().unwrap().clone();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["status"], "paid", "newest first");
    assert_eq!(orders[1]["total"], json!(10.5));
    assert!(orders[0]["created_at"].is_string() && orders[0]["id"].is_u64());

    // Another customer's profile does not exist, as far as Ada can tell.
    let other = app
        .get(&format!("/users/{}", bob["id"]))
        .token(&ada_token)
        .send()
        .await;
    other.problem(404);
    let missing = app.get("/users/999999").token(&ada_token).send().await;
    assert_eq!(other.raw, missing.raw);

    app.get(&format!("/users/{}", bob["id"]))
        .token(&admin.token)
        .send()
        .await
        .expect(200);
    app.get("/users/999999")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    app.put(&format!("/users/{}", bob["id"]))
        .token(&ada_token)
        .json(json!({"name": "x"}))
        .send()
        .await
        .problem(404);
    app.delete(&format!("/users/{}", bob["id"]))
        .token(&ada_token)
        .send()
        .await
        .problem(404);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn updates_follow_the_rules_and_a_new_password_revokes_old_tokens(pool: MySqlPool) {
    let app = app(pool);
    let ada = register(&app, "ada@example.com", "password-a").await;
    let uri = format!("/users/{}", ada["id"]);
    let old_token = token(&app, "ada@example.com", "password-a").await;

    let renamed = app
        .put(&uri)
        .token(&old_token)
        .json(json!({"name": "Ada L.", "email": " ADA.L@Example.com", "current_password": "password-a"}))
        .send()
        .await;
    assert_eq!(renamed.expect(200)["name"], "Ada L.");
    assert_eq!(renamed.body["email"], "ada.l@example.com");

    app.put(&uri)
        .token(&old_token)
        .json(json!({"role": "admin"}))
        .send()
        .await
        .problem(403);
    app.put(&uri)
        .token(&old_token)
        .json(json!({}))
        .send()
        .await
        .problem(400);
    app.put(&uri)
        .token(&old_token)
        .json(json!({"password": "short"}))
        .send()
        .await
        .invalid_field("password");
    app.put(&uri)
        .token(&old_token)
        .json(json!({"role": "emperor"}))
        .send()
        .await
        .invalid_field("role");

    app.put(&uri)
        .token(&old_token)
        .json(json!({"password": "password-new", "current_password": "password-a"}))
        .send()
        .await
        .expect(200);
    app.get(&uri).token(&old_token).send().await.problem(401);
    login(&app, "ada.l@example.com", "password-a")
        .await
        .problem(401);
    let new_token = token(&app, "ada.l@example.com", "password-new").await;
    app.get(&uri).token(&new_token).send().await.expect(200);

    // An admin may change a role; it applies to the user's very next request.
    let admin = app.admin().await;
    let promoted = app
        .put(&uri)
        .token(&admin.token)
        .json(json!({"role": "admin"}))
        .send()
        .await;
    assert_eq!(promoted.expect(200)["role"], "admin");
    let bob = register(&app, "bob@example.com", "password-b").await;
    app.get(&format!("/users/{}", bob["id"]))
        .token(&new_token)
        .send()
        .await
        .expect(200);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn admins_delete_others_and_unknown_users_are_404(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let bob = app.customer().await;
    app.delete(&format!("/users/{}", bob.id))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    app.delete(&format!("/users/{}", bob.id))
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    app.get(&format!("/users/{}", bob.id))
        .token(&bob.token)
        .send()
        .await
        .problem(401);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn register_and_login_through_lambda_events(pool: MySqlPool) {
    let app = app(pool);
    let registered = invoke_lambda(
        app.router.clone(),
        http_api_event(
            "POST",
            "/users/register",
            "",
            json!({}),
            Some(r#"{"name":"Ada","email":"ada@example.com","password":"correct horse"}"#),
        ),
    )
    .await;
    assert_eq!(registered["statusCode"], 201);
    let id = lambda_body(&registered)["id"].as_u64().unwrap();

    let logged_in = invoke_lambda(
        app.router.clone(),
        rest_api_event(
            "Prod",
            "POST",
            "/users/login",
            json!({}),
            json!({}),
            Some(r#"{"email":"ada@example.com","password":"correct horse"}"#),
        ),
    )
    .await;
    assert_eq!(logged_in["statusCode"], 200);
    let token = lambda_body(&logged_in)["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let profile = invoke_lambda(
        app.router.clone(),
        http_api_event(
            "GET",
            &format!("/users/{id}"),
            "",
            json!({"authorization": format!("Bearer {token}")}),
            None,
        ),
    )
    .await;
    assert_eq!(profile["statusCode"], 200);
    assert_eq!(lambda_body(&profile)["email"], "ada@example.com");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn emails_differing_only_in_accents_are_different_accounts(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "zoe@example.org", "password-zoe").await;
    let other = register(&app, "zoë@example.org", "password-other").await;
    assert_eq!(other["email"], "zoë@example.org");
    login(&app, "zoë@example.org", "password-zoe")
        .await
        .problem(401);
    login(&app, "ZOË@example.org", "password-other")
        .await
        .expect(200);
    login(&app, "zoe@example.org", "password-zoe")
        .await
        .expect(200);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_logins_with_the_right_password_are_never_throttled(pool: MySqlPool) {
    let app = std::sync::Arc::new(app(pool));
    register(&app, "ada@example.com", "correct horse").await;
    let attempts: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                login(&app, "ada@example.com", "correct horse")
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), 200);
    }
}

async fn stored(app: &TestApp, id: &Value) -> (String, String, u32) {
    sqlx::query_as(
        "SELECT CAST(email AS CHAR), password_hash, token_version FROM users WHERE id = ?",
    )
    .bind(id.as_u64().unwrap())
    .fetch_one(app.pool())
    .await
    .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn changing_ones_own_email_or_password_takes_the_current_password(pool: MySqlPool) {
    let app = app(pool);
    let ada = register(&app, "ada@example.com", "password-a").await;
    let uri = format!("/users/{}", ada["id"]);
    let ada_token = token(&app, "ada@example.com", "password-a").await;
    let before = stored(&app, &ada["id"]).await;

    // Missing: 400 naming it, and nothing changes.
    for body in [
        json!({"email": "ada2@example.com"}),
        json!({"password": "password-b"}),
    ] {
        app.put(&uri)
            .token(&ada_token)
            .json(body)
            .send()
            .await
            .invalid_field("current_password");
    }
    assert_eq!(stored(&app, &ada["id"]).await, before);

    // Wrong: 403, nothing changes, and it counts as a failed login for the account.
    let wrong = app
        .put(&uri)
        .token(&ada_token)
        .json(json!({"email": "ada2@example.com", "current_password": "guess-1"}))
        .send()
        .await;
    wrong.problem(403);
    assert_eq!(stored(&app, &ada["id"]).await, before);
    let failures: u32 =
        sqlx::query_scalar("SELECT failures FROM login_throttle WHERE email = 'ada@example.com'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(failures, 1);

    // A name alone needs no password.
    app.put(&uri)
        .token(&ada_token)
        .json(json!({"name": "Ada L."}))
        .send()
        .await
        .expect(200);

    // Right: the change is made.
    let changed = app
        .put(&uri)
        .token(&ada_token)
        .json(json!({"email": "ada2@example.com", "current_password": "password-a"}))
        .send()
        .await;
    assert_eq!(changed.expect(200)["email"], "ada2@example.com");

    // Four more wrong guesses (one per request, as a thief would) and the account is
    // throttled like its login: even the right password now gets 429.
    for i in 0..5 {
        app.put(&uri)
            .token(&ada_token)
            .json(json!({"password": "password-x", "current_password": format!("guess-{i}")}))
            .send()
            .await
            .problem(403);
    }
    let throttled = app
        .put(&uri)
        .token(&ada_token)
        .json(json!({"password": "password-x", "current_password": "password-a"}))
        .send()
        .await;
    throttled.problem(429);
    assert!(throttled.header("retry-after").is_some());
    login(&app, "ada2@example.com", "password-a")
        .await
        .problem(429);
    let after = stored(&app, &ada["id"]).await;
    assert_eq!(after.1, before.1, "the password is unchanged");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn admins_need_their_own_password_only_for_their_own_account(pool: MySqlPool) {
    let app = app(pool);
    let ada = register(&app, "ada@example.com", "password-a").await;
    let admin_email = "boss@example.com";
    register(&app, admin_email, "password-boss").await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE email = ?")
        .bind(admin_email)
        .execute(app.pool())
        .await
        .unwrap();
    let admin = login(&app, admin_email, "password-boss")
        .await
        .expect(200)
        .clone();
    let admin_token = admin["access_token"].as_str().unwrap();

    // Another user's email and password: no password of theirs or the admin's needed.
    let changed = app
        .put(&format!("/users/{}", ada["id"]))
        .token(admin_token)
        .json(json!({"email": "ada.new@example.com", "password": "password-reset"}))
        .send()
        .await;
    assert_eq!(changed.expect(200)["email"], "ada.new@example.com");
    token(&app, "ada.new@example.com", "password-reset").await;

    // Their own: the same rule as everyone.
    let own = format!("/users/{}", admin["user"]["id"]);
    app.put(&own)
        .token(admin_token)
        .json(json!({"password": "password-boss-2"}))
        .send()
        .await
        .invalid_field("current_password");
    app.put(&own)
        .token(admin_token)
        .json(json!({"password": "password-boss-2", "current_password": "password-boss"}))
        .send()
        .await
        .expect(200);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn email_lengths_are_checked_after_lower_casing(pool: MySqlPool) {
    let app = app(pool);
    // "İ" is one character that lower-cases to two ("i̇"): 254 of them fit before
    // normalising and not after.
    let long = "İ".repeat(254);
    let at_login = app
        .post("/users/login")
        .json(json!({"email": long, "password": "whatever-123"}))
        .send()
        .await;
    at_login.invalid_field("email");
    let at_register = app
        .post("/users/register")
        .json(json!({"name": "Ada", "email": format!("{}@example.com", "İ".repeat(120)), "password": "password-a"}))
        .send()
        .await;
    at_register.invalid_field("email");
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("login_throttle").await, 0);
    // Within the limit once lower-cased, an unknown email is a plain 401.
    login(
        &app,
        &format!("{}@example.com", "İ".repeat(100)),
        "whatever-123",
    )
    .await
    .problem(401);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_wrongly_typed_role_names_the_field(pool: MySqlPool) {
    let app = app(pool);
    let admin = app.admin().await;
    let ada = register(&app, "ada@example.com", "password-a").await;
    for role in [
        json!(1),
        json!(true),
        json!(["admin"]),
        json!({"role": "admin"}),
    ] {
        app.put(&format!("/users/{}", ada["id"]))
            .token(&admin.token)
            .json(json!({"role": role}))
            .send()
            .await
            .invalid_field("role");
    }
}
