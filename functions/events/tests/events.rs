//! The `events` function through its real router over a real database: the admin feed,
//! webhook endpoints (secret shown once, forbidden addresses refused) and deliveries.

use std::sync::Arc;

use domain::events::EventType;
use domain::webhooks::schedule::Settings;
use platform::config::Secret;
use platform::crypto::SealingKey;
use platform::outbound::{Outbound, Policy};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, TestUser};

const WEBHOOK_KEY: &str = "test-only-webhook-sealing-key-0123456789";

/// The function with its sealing key, as its cold start builds it, and an admin.
async fn app(pool: MySqlPool) -> (TestApp, TestUser) {
    events::Hooks::install(events::Hooks {
        sealing: Arc::new(SealingKey::from_secret(&Secret::new(WEBHOOK_KEY)).unwrap()),
        // The deployed policy: no private receivers at all.
        outbound: Arc::new(Outbound::new(Policy::default())),
    });
    let app = TestApp::new(pool, events::router);
    let admin = app.admin().await;
    (app, admin)
}

/// Commits `n` events of `kind` in one transaction each, then publishes them.
async fn emit(pool: &MySqlPool, kind: EventType, n: u64) {
    for i in 0..n {
        let mut tx = pool.begin().await.unwrap();
        domain::events::record(&mut tx, kind, &json!({"id": i + 1}))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    domain::webhooks::relay::publish(pool, &Settings::default())
        .await
        .unwrap();
}

fn ids(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_feed_is_for_admins_oldest_first_with_after_type_and_pages(pool: MySqlPool) {
    let (app, admin) = app(pool).await;
    emit(app.pool(), EventType::OrderCreated, 3).await;
    emit(app.pool(), EventType::OrderPaid, 2).await;

    app.get("/events").send().await.problem(401);
    let customer = app.customer().await;
    app.get("/events")
        .token(&customer.token)
        .send()
        .await
        .problem(403);

    let all = app.get("/events").token(&admin.token).send().await;
    assert_eq!(ids(all.expect(200)), [1, 2, 3, 4, 5]);
    let first = &all.body["items"][0];
    assert_eq!(first["type"], "order.created");
    assert_eq!(first["data"], json!({"id": 1}));
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all.body["next_cursor"], Value::Null);

    let after = app.get("/events?after=3").token(&admin.token).send().await;
    assert_eq!(ids(after.expect(200)), [4, 5]);
    let paid = app
        .get("/events?type=order.paid")
        .token(&admin.token)
        .send()
        .await;
    assert_eq!(ids(paid.expect(200)), [4, 5]);
    let created_after = app
        .get("/events?type=order.created&after=1")
        .token(&admin.token)
        .send()
        .await;
    assert_eq!(ids(created_after.expect(200)), [2, 3]);

    // A walk by pages sees every event once.
    let mut seen = Vec::new();
    let mut uri = "/events?limit=2".to_string();
    loop {
        let page = app.get(&uri).token(&admin.token).send().await;
        seen.extend(ids(page.expect(200)));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/events?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);

    for (query, field) in [
        ("type=order.updated", "type"),
        ("after=abc", "after"),
        ("after=-1", "after"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=garbage", "cursor"),
    ] {
        app.get(&format!("/events?{query}"))
            .token(&admin.token)
            .send()
            .await
            .invalid_field(field);
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_endpoint_shows_its_secret_once_and_is_managed_by_admins(pool: MySqlPool) {
    let (app, admin) = app(pool).await;
    let customer = app.customer().await;
    let body = json!({
        "url": "https://93.184.215.14/hooks",
        "events": ["order.paid", "order.created"],
        "description": "warehouse"
    });
    app.post("/webhook-endpoints")
        .token(&customer.token)
        .json(body.clone())
        .send()
        .await
        .problem(403);
    let created = app
        .post("/webhook-endpoints")
        .token(&admin.token)
        .json(body)
        .send()
        .await;
    let endpoint = created.expect(201).clone();
    let id = endpoint["id"].as_u64().unwrap();
    assert_eq!(
        created.header("location"),
        Some(format!("/webhook-endpoints/{id}").as_str())
    );
    let secret = endpoint["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() >= 6 + 32);
    assert_eq!(endpoint["events"], json!(["order.created", "order.paid"]));
    assert_eq!(endpoint["enabled"], true);
    // Stored sealed: the database does not hold the secret.
    let sealed: String =
        sqlx::query_scalar("SELECT secret_sealed FROM webhook_endpoints WHERE id = ?")
            .bind(id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(!sealed.contains(&secret[6..]));

    let shown = app
        .get(&format!("/webhook-endpoints/{id}"))
        .token(&admin.token)
        .send()
        .await;
    assert!(shown.expect(200).get("secret").is_none());
    let listed = app
        .get("/webhook-endpoints")
        .token(&admin.token)
        .send()
        .await;
    assert!(!String::from_utf8_lossy(&listed.raw).contains("whsec_"));
    assert_eq!(ids(listed.expect(200)), [id]);

    let updated = app
        .put(&format!("/webhook-endpoints/{id}"))
        .token(&admin.token)
        .json(json!({"url": "https://93.184.215.14/v2", "events": ["*"], "enabled": false}))
        .send()
        .await;
    assert_eq!(updated.expect(200)["events"], json!(["*"]));
    assert_eq!(updated.body["enabled"], false);
    assert!(updated.body.get("secret").is_none());

    app.delete(&format!("/webhook-endpoints/{id}"))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    app.get(&format!("/webhook-endpoints/{id}"))
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    app.delete(&format!("/webhook-endpoints/{id}"))
        .token(&admin.token)
        .send()
        .await
        .problem(404);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn bad_endpoints_are_refused_naming_the_field_and_change_nothing(pool: MySqlPool) {
    let (app, admin) = app(pool).await;
    for (body, field) in [
        (
            json!({"url": "http://127.0.0.1:9999/", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://10.1.2.3/", "events": ["*"]}), "url"),
        (
            json!({"url": "https://169.254.169.254/", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://[::1]/", "events": ["*"]}), "url"),
        (json!({"url": "https://0x7f.1/", "events": ["*"]}), "url"),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (
            json!({"url": "https://93.184.215.14/", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://93.184.215.14/", "events": ["order.updated"]}),
            "events[0]",
        ),
        (json!({"url": "https://93.184.215.14/"}), "events"),
        (
            json!({"url": "https://93.184.215.14/", "events": ["*"], "secret": "x"}),
            "secret",
        ),
    ] {
        let response = app
            .post("/webhook-endpoints")
            .token(&admin.token)
            .json(body.clone())
            .send()
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
        response.invalid_field(field);
    }
    assert_eq!(app.count("webhook_endpoints").await, 0);
    app.get("/webhook-endpoints/0")
        .token(&admin.token)
        .send()
        .await
        .invalid_field("endpoint_id");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn deliveries_are_listed_newest_first_and_retried_on_request(pool: MySqlPool) {
    let (app, admin) = app(pool).await;
    let created = app
        .post("/webhook-endpoints")
        .token(&admin.token)
        .json(json!({"url": "https://93.184.215.14/hooks", "events": ["order.paid"]}))
        .send()
        .await;
    let endpoint = created.expect(201)["id"].as_u64().unwrap();
    emit(app.pool(), EventType::OrderCreated, 1).await;
    emit(app.pool(), EventType::OrderPaid, 2).await;

    let uri = format!("/webhook-endpoints/{endpoint}/deliveries");
    let listed = app.get(&uri).token(&admin.token).send().await;
    let items = listed.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["event_id"], 3);
    assert_eq!(items[1]["event_id"], 2);
    assert_eq!(items[0]["event_type"], "order.paid");
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[0]["attempts"], json!([]));
    let delivery = items[1]["id"].as_u64().unwrap();

    let retried = app
        .post(&format!("{uri}/{delivery}/retry"))
        .token(&admin.token)
        .send()
        .await;
    assert_eq!(retried.expect(202)["id"], delivery);
    assert_eq!(retried.body["status"], "pending");
    let manual: bool = sqlx::query_scalar("SELECT manual FROM webhook_deliveries WHERE id = ?")
        .bind(delivery)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(manual);

    app.post(&format!("{uri}/999/retry"))
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    app.get("/webhook-endpoints/999/deliveries")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    let customer = app.customer().await;
    app.post(&format!("{uri}/{delivery}/retry"))
        .token(&customer.token)
        .send()
        .await
        .problem(403);
}
