//! The relay function against a real database and a real SQS API (moto's server, started
//! by `make test`): committed events become deliveries, and due deliveries messages.

use std::time::Duration;

use domain::events::{self, EventType};
use domain::webhooks::schedule::Settings;
use platform::queue::SqsQueue;
use serde_json::json;
use sqlx::MySqlPool;

fn moto_env(name: &str) -> Option<String> {
    match name {
        "AWS_ENDPOINT_URL" => Some(
            std::env::var("MOTO_ENDPOINT")
                .expect("MOTO_ENDPOINT must name a running moto server; `make test` starts one"),
        ),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    }
}

async fn sqs_queue() -> SqsQueue {
    let config = platform::aws::sdk_config(&moto_env).await;
    let client = aws_sdk_sqs::Client::new(&config);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = client
        .create_queue()
        .queue_name(format!("shop-relay-{nanos}"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    SqsQueue::new(client, url)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_run_publishes_committed_events_and_queues_their_deliveries(pool: MySqlPool) {
    let endpoint = sqlx::query(
        "INSERT INTO webhook_endpoints (url, secret_sealed) VALUES ('https://example.com/', 'x')",
    )
    .execute(&pool)
    .await
    .unwrap()
    .last_insert_id();
    sqlx::query("INSERT INTO webhook_subscriptions (endpoint_id, event_type) VALUES (?, '*')")
        .bind(endpoint)
        .execute(&pool)
        .await
        .unwrap();
    for n in 0..3 {
        let mut tx = pool.begin().await.unwrap();
        events::record(&mut tx, EventType::OrderPaid, &json!({"id": n}))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    // Written but rolled back: never published.
    let mut tx = pool.begin().await.unwrap();
    events::record(&mut tx, EventType::OrderPaid, &json!({"id": 99}))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let queue = sqs_queue().await;
    let answer = webhook_relay::run(&pool, &queue, &Settings::default())
        .await
        .unwrap();
    assert_eq!(answer["published"], 3);
    assert_eq!(answer["deliveries_created"], 3);
    // One delivery in flight per endpoint: its oldest.
    assert_eq!(answer["enqueued"], 1);
    assert_eq!(answer["batchItemFailures"], json!([]));
    let received = queue.receive(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(received.len(), 1);

    // Run again: nothing new, nothing due (the one in flight is leased).
    let again = webhook_relay::run(&pool, &queue, &Settings::default())
        .await
        .unwrap();
    assert_eq!(again["published"], 0);
    assert_eq!(again["enqueued"], 0);
}
