//! A request that records events wakes the webhook relay through its SQS wake-up queue
//! (moto's server, started by `make test`), after its transaction has committed; a request
//! that records none sends nothing. Its own test binary: the wake-up queue is the process's.

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

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_write_that_records_events_wakes_the_relay_and_a_read_does_not(pool: MySqlPool) {
    let queue = wake_queue().await;
    web::wake::install(queue.clone());
    let orders = TestApp::new(pool, orders::router);
    let buyer = orders.customer().await;
    let mug = orders.product("Mug", "5.00", 10).await;

    let placed = orders
        .post("/orders")
        .token(&buyer.token)
        .json(json!({"items": [{"product_id": mug, "quantity": 1}]}))
        .send()
        .await;
    let order = placed.expect(201)["id"].as_u64().unwrap();
    let woken = queue.receive(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(woken.len(), 1, "one wake-up for the order placed");
    for message in &woken {
        queue.delete(&message.receipt_handle).await.unwrap();
    }

    orders
        .get(&format!("/orders/{order}"))
        .token(&buyer.token)
        .send()
        .await
        .expect(200);
    let quiet = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(quiet.is_empty(), "a read recorded nothing: {quiet:?}");
}
