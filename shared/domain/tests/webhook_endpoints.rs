//! Webhook endpoints: a secret shown once and stored sealed, URLs checked against every
//! address they resolve to, and the usual create, read, update, delete.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::error::Error;
use domain::validate::Validate;
use domain::webhooks::endpoints::{
    self, EndpointQuery, EndpointUpdate, NewEndpoint, Subscription, signing_key,
};
use platform::config::Secret;
use platform::crypto::SealingKey;
use platform::outbound::resolver::FixedLookup;
use platform::outbound::{Outbound, Policy};
use serde_json::json;
use sqlx::MySqlPool;

fn new(url: &str, events: serde_json::Value) -> NewEndpoint {
    serde_json::from_value(json!({"url": url, "events": events})).unwrap()
}

/// The deployed policy, with a DNS table the test controls.
fn deployed(lookup: Arc<FixedLookup>) -> Outbound {
    Outbound::with_lookup(Policy::default(), lookup)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn refused_field(result: Result<impl std::fmt::Debug, Error>) -> (String, String) {
    match result {
        Err(Error::Invalid(errors)) => (errors[0].field.clone(), errors[0].message.clone()),
        other => panic!("expected a 400, got {other:?}"),
    }
}

async fn endpoint_count(pool: &MySqlPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_secret_is_shown_once_and_stored_sealed(pool: MySqlPool) {
    let lookup = Arc::new(FixedLookup::default());
    lookup.set("hooks.example", &[ip("203.0.113.7")]);
    let outbound = deployed(lookup);
    let sealing = common::sealing();
    let created = endpoints::create(
        &pool,
        &outbound,
        &sealing,
        new(
            "https://hooks.example/in",
            json!(["order.paid", "order.created"]),
        ),
    )
    .await
    .unwrap();
    let secret = created.secret.clone();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(key.len(), 32);
    let shown = serde_json::to_value(&created).unwrap();
    assert_eq!(shown["secret"], secret);
    assert_eq!(shown["url"], "https://hooks.example/in");
    assert_eq!(shown["events"], json!(["order.created", "order.paid"]));
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["disabled_reason"], json!(null));

    // Never again.
    let id = created.endpoint.id;
    let read = serde_json::to_value(endpoints::get(&pool, id).await.unwrap()).unwrap();
    assert!(read.get("secret").is_none());
    let listed = endpoints::list(&pool, &EndpointQuery::default())
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&listed)
            .unwrap()
            .find("whsec_")
            .is_none()
    );

    // The database holds neither the secret nor the key, only what the sealing key opens.
    let sealed: String =
        sqlx::query_scalar("SELECT secret_sealed FROM webhook_endpoints WHERE id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let encoded_key = STANDARD.encode(&key);
    assert!(!sealed.contains(&encoded_key) && !sealed.contains(&secret));
    assert_eq!(signing_key(&sealing, id, &sealed).unwrap().secret(), secret);
    let other_key =
        SealingKey::from_secret(&Secret::new("another-sealing-key-0123456789abcdefgh")).unwrap();
    assert!(signing_key(&other_key, id, &sealed).is_err());
    // Copied onto another endpoint, it does not open.
    assert!(signing_key(&sealing, id + 1, &sealed).is_err());

    // Every endpoint gets its own secret.
    let second = endpoints::create(
        &pool,
        &outbound,
        &sealing,
        new("https://hooks.example/2", json!(["*"])),
    )
    .await
    .unwrap();
    assert_ne!(second.secret, secret);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn urls_reaching_the_shops_own_network_are_refused_at_creation(pool: MySqlPool) {
    let lookup = Arc::new(FixedLookup::default());
    lookup.set("internal.example", &[ip("10.20.30.40")]);
    lookup.set("metadata.example", &[ip("169.254.169.254")]);
    lookup.set("public.example", &[ip("203.0.113.7")]);
    let outbound = deployed(lookup);
    let sealing = common::sealing();
    for (url, message) in [
        ("http://public.example/in", "must use https"),
        (
            "https://internal.example/in",
            "reaches 10.20.30.40, a private address",
        ),
        (
            "https://metadata.example/",
            "reaches 169.254.169.254, a link-local (cloud metadata) address",
        ),
        ("https://10.0.0.1/", "reaches 10.0.0.1, a private address"),
        ("https://0x7f.1/", "reaches 127.0.0.1, a loopback address"),
        (
            "https://localhost/",
            "reaches 127.0.0.1, a loopback address",
        ),
        (
            "https://[::ffff:192.168.0.1]/",
            "reaches ::ffff:192.168.0.1, an IPv6 form of a non-public IPv4 address",
        ),
        ("http://127.0.0.1:8000/", "must use https"),
        (
            "https://user:pw@public.example/",
            "must not contain a user name or password",
        ),
        ("public.example", "is not a valid absolute URL"),
    ] {
        let result = endpoints::create(&pool, &outbound, &sealing, new(url, json!(["*"]))).await;
        assert_eq!(
            refused_field(result),
            ("url".into(), message.into()),
            "{url}"
        );
    }
    assert_eq!(endpoint_count(&pool).await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn locally_the_developers_loopback_receiver_is_allowed(pool: MySqlPool) {
    let outbound = common::local_outbound(Duration::from_secs(10));
    let sealing = common::sealing();
    for url in ["http://127.0.0.1:8000/hooks", "http://localhost:8000/hooks"] {
        let created = endpoints::create(&pool, &outbound, &sealing, new(url, json!(["*"])))
            .await
            .unwrap();
        assert_eq!(created.endpoint.url, url);
    }
    let refused = endpoints::create(
        &pool,
        &outbound,
        &sealing,
        new("http://192.168.1.2:8000/", json!(["*"])),
    )
    .await;
    assert_eq!(refused_field(refused).0, "url");
}

#[test]
fn events_are_known_types_or_star() {
    let parse = |events: serde_json::Value| {
        serde_json::from_value::<NewEndpoint>(json!({"url": "https://x.example", "events": events}))
    };
    let ok = parse(json!(["*", "payment.refunded", "product.back_in_stock"])).unwrap();
    assert_eq!(ok.events[0], Subscription::All);
    let err = parse(json!(["order.updated"])).unwrap_err().to_string();
    assert!(
        err.contains("unknown event type \"order.updated\""),
        "{err}"
    );
    assert!(parse(json!("*")).is_err());
    assert!(parse(json!([7])).is_err());
    let unknown_field = serde_json::from_value::<NewEndpoint>(
        json!({"url": "https://x.example", "events": ["*"], "secret": "mine"}),
    );
    assert!(unknown_field.is_err());

    let fields = |input: NewEndpoint| -> Vec<String> {
        input
            .validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    };
    assert_eq!(fields(parse(json!([])).unwrap()), vec!["events"]);
    let long = NewEndpoint {
        url: format!("https://x.example/{}", "a".repeat(2000)),
        events: vec![Subscription::All],
        description: Some("d".repeat(501)),
    };
    assert_eq!(fields(long), vec!["url", "description"]);
    assert!(fields(parse(json!(["*"])).unwrap()).is_empty());
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn update_replaces_the_endpoint_and_can_enable_it_again(pool: MySqlPool) {
    let outbound = common::local_outbound(Duration::from_secs(10));
    let sealing = common::sealing();
    let created = endpoints::create(
        &pool,
        &outbound,
        &sealing,
        new("http://127.0.0.1:9/a", json!(["*"])),
    )
    .await
    .unwrap();
    let id = created.endpoint.id;
    let update = |url: &str, enabled: Option<bool>| -> EndpointUpdate {
        serde_json::from_value(json!({
            "url": url, "events": ["order.shipped"], "description": "warehouse", "enabled": enabled
        }))
        .unwrap()
    };
    let updated = endpoints::update(
        &pool,
        &outbound,
        id,
        update("http://127.0.0.1:9/b", Some(false)),
    )
    .await
    .unwrap();
    assert_eq!(updated.url, "http://127.0.0.1:9/b");
    assert_eq!(updated.events, vec!["order.shipped"]);
    assert_eq!(updated.description.as_deref(), Some("warehouse"));
    assert!(!updated.enabled);
    assert_eq!(
        updated.disabled_reason.as_deref(),
        Some("Disabled by an admin.")
    );
    // Absent `enabled` keeps it; `true` enables it and forgets why it was disabled.
    let kept = endpoints::update(&pool, &outbound, id, update("http://127.0.0.1:9/b", None))
        .await
        .unwrap();
    assert!(!kept.enabled);
    sqlx::query("UPDATE webhook_endpoints SET failing_since = UTC_TIMESTAMP(6) WHERE id = ?")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let enabled = endpoints::update(
        &pool,
        &outbound,
        id,
        update("http://127.0.0.1:9/b", Some(true)),
    )
    .await
    .unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    let failing: Option<chrono::NaiveDateTime> =
        sqlx::query_scalar("SELECT failing_since FROM webhook_endpoints WHERE id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(failing, None);
    // A bad URL changes nothing.
    let refused = endpoints::update(
        &pool,
        &outbound,
        id,
        update("https://10.1.1.1/", Some(false)),
    )
    .await;
    assert_eq!(refused_field(refused).0, "url");
    assert_eq!(
        endpoints::get(&pool, id).await.unwrap().url,
        "http://127.0.0.1:9/b"
    );
    assert!(endpoints::get(&pool, id).await.unwrap().enabled);
    // Unknown endpoints are 404s.
    assert!(matches!(
        endpoints::update(
            &pool,
            &outbound,
            id + 1,
            update("http://127.0.0.1:9/b", None)
        )
        .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        endpoints::get(&pool, id + 1).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        endpoints::delete(&pool, id + 1).await,
        Err(Error::NotFound(_))
    ));
    endpoints::delete(&pool, id).await.unwrap();
    assert!(matches!(
        endpoints::get(&pool, id).await,
        Err(Error::NotFound(_))
    ));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn endpoints_are_listed_oldest_first_in_pages(pool: MySqlPool) {
    let outbound = common::local_outbound(Duration::from_secs(10));
    let sealing = common::sealing();
    for n in 0..5 {
        endpoints::create(
            &pool,
            &outbound,
            &sealing,
            new(&format!("http://127.0.0.1:9/{n}"), json!(["*"])),
        )
        .await
        .unwrap();
    }
    let mut cursor = None;
    let mut urls = Vec::new();
    loop {
        let query = EndpointQuery {
            limit: serde_json::from_value(json!(2)).unwrap(),
            cursor,
        };
        let page = endpoints::list(&pool, &query).await.unwrap();
        urls.extend(page.items.into_iter().map(|e| e.url));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..5).map(|n| format!("http://127.0.0.1:9/{n}")).collect();
    assert_eq!(urls, expected);
}
