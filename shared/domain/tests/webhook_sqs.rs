//! The AWS path of the pipeline with a real SQS API (moto's server, started by `make test`):
//! the relay sends to SQS, the delivery step takes a batch as a Lambda event source mapping
//! hands it over, and reports only the messages it could not handle.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, Reply};
use common::{deliverer, deliveries_of, emit, endpoint, fast_settings, verifies};
use domain::events::EventType;
use domain::webhooks::lease::Ticket;
use domain::webhooks::relay;
use platform::queue::{Queue, Received, SqsQueue};
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
        .queue_name(format!("shop-deliveries-{nanos}"))
        .send()
        .await
        .expect("create a queue in moto")
        .queue_url()
        .unwrap()
        .to_string();
    SqsQueue::new(client, url)
}

async fn receive_all(queue: &SqsQueue, n: usize) -> Vec<Received> {
    let mut received = Vec::new();
    for _ in 0..20 {
        received.extend(queue.receive(10, Duration::from_secs(1)).await.unwrap());
        if received.len() >= n {
            break;
        }
    }
    received
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn events_travel_through_sqs_to_their_receivers(pool: MySqlPool) {
    let queue = sqs_queue().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let d = deliverer(&pool, fast_settings(), Duration::from_secs(5));
    // Twelve endpoints: more messages than one SendMessageBatch carries.
    let mut hooks = Vec::new();
    for _ in 0..12 {
        hooks.push(endpoint(&d, &receiver.url(), &["order.paid"]).await);
    }
    emit(
        &pool,
        EventType::OrderPaid,
        json!({"id": 1, "status": "paid"}),
    )
    .await;
    let report = relay::step(&pool, &queue, &d.settings).await.unwrap();
    assert_eq!(
        (report.published, report.deliveries_created, report.enqueued),
        (1, 12, 12)
    );

    let mut messages = receive_all(&queue, 12).await;
    assert_eq!(messages.len(), 12);
    // One message that is no ticket: the batch reports it, and only it, as failed.
    queue.send(vec!["not a ticket".into()]).await.unwrap();
    let junk = receive_all(&queue, 1).await;
    messages.extend(junk.clone());
    let batch = messages
        .iter()
        .map(|m| (m.message_id.clone(), m.body.clone()))
        .collect();
    let failed = d.handle_batch(batch).await;
    assert_eq!(failed, vec![junk[0].message_id.clone()]);
    for message in messages
        .iter()
        .filter(|m| m.message_id != junk[0].message_id)
    {
        queue.delete(&message.receipt_handle).await.unwrap();
    }

    let requests = receiver.wait_for(12, Duration::from_secs(5)).await;
    for hook in &hooks {
        let delivery = deliveries_of(&pool, hook.endpoint.id).await.remove(0);
        assert_eq!(delivery.status, "succeeded");
        assert!(
            requests.iter().any(|r| verifies(&hook.secret, r)),
            "no request signed with endpoint {}'s secret",
            hook.endpoint.id
        );
    }
    assert!(requests.iter().all(|r| r.header("webhook-id") == Some("1")));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_message_delivered_twice_by_sqs_attempts_once(pool: MySqlPool) {
    let queue = sqs_queue().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let d = deliverer(&pool, fast_settings(), Duration::from_secs(5));
    endpoint(&d, &receiver.url(), &["*"]).await;
    emit(&pool, EventType::OrderCreated, json!({"id": 1})).await;
    relay::step(&pool, &queue, &d.settings).await.unwrap();
    let message = receive_all(&queue, 1).await.remove(0);
    let ticket = Ticket::decode(&message.body).unwrap();
    assert_eq!(ticket.delivery, 1);
    // SQS delivers at least once: the same message twice, at the same time.
    let failed = d
        .handle_batch(vec![
            ("a".into(), message.body.clone()),
            ("b".into(), message.body.clone()),
        ])
        .await;
    assert!(failed.is_empty());
    receiver.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.requests().len(), 1);
}
