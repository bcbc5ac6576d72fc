//! The delivery function as a Lambda SQS event source mapping invokes it: a batch of the
//! relay's messages, each attempted against a receiver on loopback, and only the messages
//! that could not be handled reported back.

#[path = "../../../shared/platform/tests/support/receiver.rs"]
mod receiver;

use std::sync::Arc;
use std::time::Duration;

use domain::events::{self, EventType};
use domain::webhooks::delivery::Deliverer;
use domain::webhooks::endpoints::{self, NewEndpoint};
use domain::webhooks::relay;
use domain::webhooks::schedule::Settings;
use platform::config::Secret;
use platform::crypto::SealingKey;
use platform::outbound::{Outbound, Policy};
use platform::queue::LocalQueue;
use receiver::{Receiver, Reply};
use serde_json::{Value, json};
use sqlx::MySqlPool;

fn deliverer(pool: &MySqlPool) -> Deliverer {
    Deliverer {
        pool: pool.clone(),
        outbound: Outbound::new(Policy {
            allow_loopback: true,
            timeout: Duration::from_secs(2),
        }),
        sealing: Arc::new(
            SealingKey::from_secret(&Secret::new("test-only-webhook-sealing-key-0123456789"))
                .unwrap(),
        ),
        settings: Arc::new(Settings::default()),
    }
}

/// What an SQS event source mapping sends for these bodies.
fn sqs_event(bodies: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("handle-{id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:shop-webhooks",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({"Records": records})
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_batch_is_delivered_and_only_the_bad_messages_are_reported(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let d = deliverer(&pool);
    let created = endpoints::create(
        &pool,
        &d.outbound,
        &d.sealing,
        NewEndpoint {
            url: receiver.url(),
            events: serde_json::from_value(json!(["*"])).unwrap(),
            description: None,
        },
    )
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    events::record(&mut tx, EventType::OrderCreated, &json!({"id": 7}))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (queue, mut messages) = LocalQueue::channel();
    relay::step(&pool, &queue, &d.settings).await.unwrap();
    let message = messages.try_recv().unwrap();

    let answer = webhook_delivery::handle(
        &d,
        &sqs_event(&[("good", &message), ("garbage", "not a delivery message")]),
    )
    .await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "garbage"}]})
    );
    let arrived = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(arrived[0].header("webhook-id"), Some("1"));
    assert!(created.secret.starts_with("whsec_"));

    // SQS delivers the same message again: consumed, not attempted twice.
    let again = webhook_delivery::handle(&d, &sqs_event(&[("good-again", &message)])).await;
    assert_eq!(again, json!({"batchItemFailures": []}));
    assert_eq!(receiver.requests().len(), 1);
}
