//! The queues: SQS against moto's server (started by `make test`), and the local channel.

use std::time::Duration;

use platform::queue::{LocalQueue, Queue, SqsQueue};

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

/// A fresh queue in moto, and the queue's client.
async fn sqs_queue() -> SqsQueue {
    let config = platform::aws::sdk_config(&moto_env).await;
    let client = aws_sdk_sqs::Client::new(&config);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = client
        .create_queue()
        .queue_name(format!("shop-test-{nanos}"))
        .send()
        .await
        .expect("create a queue in moto")
        .queue_url()
        .unwrap()
        .to_string();
    SqsQueue::new(client, url)
}

#[tokio::test]
async fn sqs_takes_any_number_of_messages_in_batches_of_ten() {
    let queue = sqs_queue().await;
    let bodies: Vec<String> = (0..23).map(|n| format!("{{\"n\":{n}}}")).collect();
    queue.send(bodies.clone()).await.unwrap();
    let mut received = Vec::new();
    for _ in 0..20 {
        let batch = queue.receive(10, Duration::from_secs(1)).await.unwrap();
        for message in batch {
            queue.delete(&message.receipt_handle).await.unwrap();
            received.push(message.body);
        }
        if received.len() == bodies.len() {
            break;
        }
    }
    received.sort();
    let mut expected = bodies;
    expected.sort();
    assert_eq!(received, expected);
    // Deleted messages do not come back.
    assert!(
        queue
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sqs_errors_are_errors() {
    let queue = sqs_queue().await;
    let missing = SqsQueue::new(
        aws_sdk_sqs::Client::new(&platform::aws::sdk_config(&moto_env).await),
        format!("{}-missing", queue.url()),
    );
    assert!(missing.send(vec!["x".into()]).await.is_err());
}

#[tokio::test]
async fn the_local_queue_hands_messages_over_in_order() {
    let (queue, mut receiver) = LocalQueue::channel();
    queue.send(vec!["a".into(), "b".into()]).await.unwrap();
    assert_eq!(receiver.recv().await.as_deref(), Some("a"));
    assert_eq!(receiver.recv().await.as_deref(), Some("b"));
    drop(receiver);
    assert!(queue.send(vec!["c".into()]).await.is_err());
}
