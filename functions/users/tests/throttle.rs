//! Login throttling keyed by email and client address, through real API Gateway events:
//! the address is API Gateway's `sourceIp`, never a header the client writes.

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, in_parallel, invoke_lambda, lambda_body, rest_api_event};

const STRANGER: &str = "198.51.100.7";
const OWNER: &str = "192.0.2.10";

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, users::router)
}

/// What came back from one invocation.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn invoke(app: &TestApp, event: Value) -> Answer {
    let response = invoke_lambda(app.router.clone(), event).await;
    let headers = if response["headers"]
        .as_object()
        .is_some_and(|h| !h.is_empty())
    {
        response["headers"].clone()
    } else {
        // REST API answers carry their headers as lists.
        let multi = response["multiValueHeaders"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        multi.into_iter().map(|(k, v)| (k, v[0].clone())).collect()
    };
    Answer {
        status: response["statusCode"].as_u64().unwrap() as u16,
        retry_after: headers["retry-after"].as_str().map(|v| v.parse().unwrap()),
        body: lambda_body(&response),
    }
}

/// `POST /users/login` from `source_ip`, as an HTTP API (payload v2) event.
fn login_event(source_ip: &str, email: &str, password: &str, headers: Value) -> Value {
    let body = json!({"email": email, "password": password}).to_string();
    let mut event = http_api_event("POST", "/users/login", "", headers, Some(&body));
    event["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    event
}

async fn login(app: &TestApp, source_ip: &str, email: &str, password: &str) -> Answer {
    invoke(app, login_event(source_ip, email, password, json!({}))).await
}

async fn register(app: &TestApp, email: &str, password: &str) -> u64 {
    let response = app
        .post("/users/register")
        .json(json!({"name": "Ada", "email": email, "password": password}))
        .send()
        .await;
    response.expect(201)["id"].as_u64().unwrap()
}

#[track_caller]
fn throttled(answer: &Answer) {
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.body["type"], "/problems/too-many-requests");
    let retry = answer.retry_after.expect("Retry-After");
    assert!((1..=900).contains(&retry), "{retry}");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_strangers_guesses_lock_out_the_stranger_and_not_the_owner(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;
    for _ in 0..5 {
        let answer = login(&app, STRANGER, "ada@example.com", "wrong horse").await;
        assert_eq!(answer.status, 401, "{answer:?}");
    }
    // Even the right password, from the stranger's address.
    throttled(&login(&app, STRANGER, "ada@example.com", "correct horse").await);
    // The owner, elsewhere, is not locked out, and has a count of their own.
    assert_eq!(
        login(&app, OWNER, "ada@example.com", "correct horse")
            .await
            .status,
        200
    );
    for _ in 0..5 {
        assert_eq!(
            login(&app, OWNER, "ada@example.com", "typo").await.status,
            401
        );
    }
    throttled(&login(&app, OWNER, "ada@example.com", "correct horse").await);

    // The window passes: the stranger is checked again.
    sqlx::query(
        "UPDATE login_throttle SET window_started_at = window_started_at - INTERVAL 16 MINUTE",
    )
    .execute(app.pool())
    .await
    .unwrap();
    assert_eq!(
        login(&app, STRANGER, "ada@example.com", "correct horse")
            .await
            .status,
        200
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn forwarding_headers_are_not_the_client_address(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;
    let spoofed = json!({
        "x-forwarded-for": OWNER,
        "x-real-ip": OWNER,
        "forwarded": format!("for={OWNER}"),
        "true-client-ip": OWNER,
    });
    for _ in 0..5 {
        let event = login_event(STRANGER, "ada@example.com", "wrong horse", spoofed.clone());
        assert_eq!(invoke(&app, event).await.status, 401);
    }
    let event = login_event(STRANGER, "ada@example.com", "correct horse", spoofed);
    throttled(&invoke(&app, event).await);
    assert_eq!(
        login(&app, OWNER, "ada@example.com", "correct horse")
            .await
            .status,
        200
    );
    let rows: Vec<(String, u32)> =
        sqlx::query_as("SELECT CAST(client_address AS CHAR), failures FROM login_throttle")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(rows, vec![(STRANGER.to_string(), 5)]);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn unknown_emails_are_throttled_the_same_way(pool: MySqlPool) {
    let app = app(pool);
    for _ in 0..5 {
        assert_eq!(
            login(&app, STRANGER, "ghost@example.com", "guess")
                .await
                .status,
            401
        );
    }
    throttled(&login(&app, STRANGER, "ghost@example.com", "guess").await);
    assert_eq!(
        login(&app, OWNER, "ghost@example.com", "guess")
            .await
            .status,
        401
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_success_clears_only_that_addresss_count_for_that_email(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;
    for _ in 0..4 {
        assert_eq!(
            login(&app, OWNER, "ada@example.com", "typo").await.status,
            401
        );
        assert_eq!(
            login(&app, STRANGER, "ada@example.com", "guess")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        login(&app, OWNER, "ada@example.com", "correct horse")
            .await
            .status,
        200
    );
    // The owner's address starts afresh: five more failures before the sixth is refused.
    for _ in 0..5 {
        assert_eq!(
            login(&app, OWNER, "ada@example.com", "typo").await.status,
            401
        );
    }
    throttled(&login(&app, OWNER, "ada@example.com", "typo").await);
    // The stranger's count stands: one more failure, then 429.
    assert_eq!(
        login(&app, STRANGER, "ada@example.com", "guess")
            .await
            .status,
        401
    );
    throttled(&login(&app, STRANGER, "ada@example.com", "guess").await);
}

/// Credential stuffing: 100 failures across many emails from one address refuse every
/// login from it, the right password for an untouched account included; other addresses
/// are not affected. Through HTTP API and REST API events alike.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn one_address_is_capped_across_all_emails(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;
    let cap = domain::users::MAX_FAILED_LOGINS_PER_ADDRESS;
    for i in 0..cap {
        let email = format!("victim{}@example.com", i / 5);
        let answer = login(&app, STRANGER, &email, "password1").await;
        assert_eq!(answer.status, 401, "attempt {i}: {answer:?}");
    }
    throttled(&login(&app, STRANGER, "ada@example.com", "correct horse").await);
    throttled(&login(&app, STRANGER, "fresh@example.com", "anything").await);
    let body = json!({"email": "ada@example.com", "password": "correct horse"}).to_string();
    let mut rest = rest_api_event(
        "Prod",
        "POST",
        "/users/login",
        json!({}),
        json!({}),
        Some(&body),
    );
    rest["requestContext"]["identity"]["sourceIp"] = json!(STRANGER);
    throttled(&invoke(&app, rest.clone()).await);

    assert_eq!(
        login(&app, OWNER, "ada@example.com", "correct horse")
            .await
            .status,
        200
    );
    rest["requestContext"]["identity"]["sourceIp"] = json!(OWNER);
    assert_eq!(invoke(&app, rest).await.status, 200);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_guesses_get_exactly_five_checks_per_address(pool: MySqlPool) {
    let app = std::sync::Arc::new(app(pool));
    register(&app, "ada@example.com", "correct horse").await;
    let statuses = in_parallel(30, |i| {
        let app = app.clone();
        async move {
            let from = [STRANGER, OWNER, "203.0.113.9"][i % 3];
            (
                from,
                login(&app, from, "ada@example.com", "wrong horse")
                    .await
                    .status,
            )
        }
    })
    .await;
    for from in [STRANGER, OWNER, "203.0.113.9"] {
        let mine: Vec<u16> = statuses
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(
            mine.iter().filter(|s| **s == 401).count(),
            5,
            "{from}: {mine:?}"
        );
        assert_eq!(
            mine.iter().filter(|s| **s == 429).count(),
            5,
            "{from}: {mine:?}"
        );
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_guesses_across_emails_stop_exactly_at_the_address_cap(pool: MySqlPool) {
    let app = std::sync::Arc::new(app(pool));
    let cap = domain::users::MAX_FAILED_LOGINS_PER_ADDRESS;
    // The address has failed 95 times within the window already.
    sqlx::query(
        "INSERT INTO login_address_throttle (client_address, failures, window_started_at)
         VALUES (?, ?, UTC_TIMESTAMP(6))",
    )
    .bind(STRANGER)
    .bind(cap - 5)
    .execute(app.pool())
    .await
    .unwrap();
    let statuses = in_parallel(20, |i| {
        let app = app.clone();
        async move {
            let email = format!("user{i}@example.com");
            login(&app, STRANGER, &email, "password1").await.status
        }
    })
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
    let failures: u32 =
        sqlx::query_scalar("SELECT failures FROM login_address_throttle WHERE client_address = ?")
            .bind(STRANGER)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(failures, cap);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_ipv6_client_is_counted_by_its_network(pool: MySqlPool) {
    let app = app(pool);
    register(&app, "ada@example.com", "correct horse").await;
    for i in 1..=5 {
        let from = format!("2001:db8:aa:bb::{i:x}");
        assert_eq!(
            login(&app, &from, "ada@example.com", "guess").await.status,
            401
        );
    }
    throttled(
        &login(
            &app,
            "2001:db8:aa:bb:ffff::1",
            "ada@example.com",
            "correct horse",
        )
        .await,
    );
    assert_eq!(
        login(
            &app,
            "2001:db8:aa:bc::1",
            "ada@example.com",
            "correct horse"
        )
        .await
        .status,
        200,
        "another network"
    );
}

/// `PUT /users/{id}` with a wrong `current_password` counts as a failed login for the
/// account from the caller's address: the same throttle and the same 429 there, and
/// nothing elsewhere.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn wrong_current_passwords_count_for_the_address_they_come_from(pool: MySqlPool) {
    let app = app(pool);
    let id = register(&app, "ada@example.com", "password-a").await;
    let token = lambda_body(
        &invoke_lambda(
            app.router.clone(),
            login_event(OWNER, "ada@example.com", "password-a", json!({})),
        )
        .await,
    )["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let update = |from: &str, current: &str| {
        let body = json!({"password": "password-b", "current_password": current}).to_string();
        let mut event = http_api_event(
            "PUT",
            &format!("/users/{id}"),
            "",
            json!({"authorization": format!("Bearer {token}")}),
            Some(&body),
        );
        event["requestContext"]["http"]["sourceIp"] = json!(from);
        event
    };
    for i in 0..5 {
        let answer = invoke(&app, update(STRANGER, &format!("guess-{i}"))).await;
        assert_eq!(answer.status, 403, "{answer:?}");
    }
    throttled(&invoke(&app, update(STRANGER, "password-a")).await);
    throttled(&login(&app, STRANGER, "ada@example.com", "password-a").await);
    // From the owner's address the account is not locked.
    assert_eq!(
        login(&app, OWNER, "ada@example.com", "password-a")
            .await
            .status,
        200
    );
    assert_eq!(invoke(&app, update(OWNER, "password-a")).await.status, 200);
}
