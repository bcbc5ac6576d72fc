//! A request that records events wakes the webhook relay through its SQS wake-up queue
//! (moto's server, started by `make test`), after its transaction has committed; a request
//! that records none sends nothing; a burst of writes sends two messages, not one each.
//! Its own test binary: the wake-up queue and its pacing are the process's.

use std::time::Duration;

use platform::queue::SqsQueue;
use serde_json::json;
use sqlx::MySqlPool;
use testkit::TestApp;

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

async fn wake_queue() -> SqsQueue {
    let config = platform::aws::sdk_config(&moto_env).await;
    let client = aws_sdk_sqs::Client::new(&config);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = client
        .create_queue()
        .queue_name(format!("shop-relay-wake-{nanos}"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    SqsQueue::new(client, url)
}

/// The messages visible within `wait`, removed from the queue.
async fn take(queue: &SqsQueue, wait: Duration) -> usize {
    let messages = queue.receive(10, wait).await.unwrap();
    for message in &messages {
        queue.delete(&message.receipt_handle).await.unwrap();
    }
    messages.len()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn writes_that_record_events_wake_the_relay_paced_and_a_read_does_not(pool: MySqlPool) {
    let queue = wake_queue().await;
    web::wake::install(queue.clone());
    let orders = TestApp::new(pool, orders::router);
    let buyer = orders.customer().await;
    let mug = orders.product("Mug", "5.00", 10).await;
    let place = || async {
        orders
            .post("/orders")
            .token(&buyer.token)
            .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
            .send()
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap()
    };

    let order = place().await;
    assert_eq!(
        take(&queue, Duration::from_secs(2)).await,
        1,
        "one wake-up, at once, for the first order"
    );

    // Four more orders in a burst: the first of them sends one message the relay sees only
    // after web::wake::COVER; the others are covered by it and send nothing.
    let burst = std::time::Instant::now();
    for _ in 0..4 {
        place().await;
    }
    let invisible = take(&queue, Duration::ZERO).await;
    assert!(
        burst.elapsed() < web::wake::COVER / 2,
        "the burst took {:?}: too slow to tell a delayed message from a late one",
        burst.elapsed()
    );
    assert_eq!(invisible, 0, "the burst's wake-up is delayed");
    assert_eq!(
        take(&queue, web::wake::COVER * 2).await,
        1,
        "one delayed wake-up for the four orders of the burst"
    );

    orders
        .get(&format!("/orders/{order}"))
        .token(&buyer.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        take(&queue, Duration::from_secs(1)).await,
        0,
        "a read recorded nothing, and the burst sent nothing more"
    );

    // After a quiet spell, an order wakes the relay at once again.
    tokio::time::sleep(web::wake::COVER).await;
    place().await;
    assert_eq!(
        take(&queue, Duration::ZERO).await,
        1,
        "at once after a quiet spell"
    );
}
