//! Killing the relay or a delivery worker midway loses no event: the database holds the
//! work, leases run out, and the receiver gets every event at least once, with the same
//! `webhook-id` when it comes again. And the local worker, measured.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::receiver::{Receiver, Reply};
use common::{Pipeline, deliverer, deliveries_of, emit, endpoint, fast_settings, verifies};
use domain::events::EventType;
use domain::webhooks::{relay, worker};
use platform::queue::{Queue, QueueError};
use serde_json::json;
use sqlx::MySqlPool;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A queue that accepts a send and never finishes it: the relay is stopped right there.
struct StuckQueue;

impl Queue for StuckQueue {
    async fn send(&self, _bodies: Vec<String>) -> Result<(), QueueError> {
        std::future::pending().await
    }
}

fn ids_received(receiver: &Receiver) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in receiver.requests() {
        *counts
            .entry(request.header("webhook-id").unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_relay_killed_while_publishing_publishes_nothing_twice(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    for n in 0..3 {
        emit(&pool, EventType::OrderCreated, json!({"n": n})).await;
    }
    // Another publisher holds the counter: this relay stops inside its publication.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT last_id FROM event_publisher WHERE id = 1 FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let d = pipeline.deliverer.clone();
    let queue = pipeline.queue.clone();
    let killed = tokio::spawn(async move { relay::step(&d.pool, &queue, &d.settings).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    holder.rollback().await.unwrap();

    let report = pipeline.relay().await;
    assert_eq!(report.published, 3);
    assert_eq!(report.deliveries_created, 3);
    pipeline.deliver_queued().await;
    receiver.wait_for(3, TIMEOUT).await;
    let expected: BTreeMap<String, usize> = [("1", 1), ("2", 1), ("3", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(ids_received(&receiver), expected);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_relay_killed_before_its_messages_are_sent_loses_nothing(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    for n in 0..3 {
        emit(&pool, EventType::OrderPaid, json!({"n": n})).await;
    }
    // Leases taken and committed, then the relay dies while sending.
    let settings = pipeline.deliverer.settings.clone();
    let killed = tokio::time::timeout(
        Duration::from_millis(300),
        relay::step(&pool, &StuckQueue, &settings),
    )
    .await;
    assert!(killed.is_err(), "the relay was meant to be stopped midway");
    // The lease holds it for a while, so a relay running every second sends it once...
    assert_eq!(pipeline.relay().await.enqueued, 0);
    // ...and once the lease has run out, it is sent again.
    tokio::time::sleep(settings.queue_lease).await;
    assert_eq!(pipeline.relay().await.enqueued, 1);
    pipeline.deliver_queued().await;
    receiver.wait_for(3, TIMEOUT).await;
    assert!(ids_received(&receiver).values().all(|n| *n == 1));
    assert_eq!(ids_received(&receiver).len(), 3);
    let statuses: Vec<String> = deliveries_of(&pool, hook.endpoint.id)
        .await
        .into_iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded", "succeeded"]);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_worker_killed_mid_attempt_loses_nothing(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    receiver.script([Reply::Hang]);
    // Attempt lease: the 1 s timeout plus the 0.5 s margin.
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), Duration::from_secs(1)));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    emit(&pool, EventType::OrderShipped, json!({"id": 5})).await;
    pipeline.relay().await;
    let message = pipeline.take_messages().remove(0);
    let d = pipeline.deliverer.clone();
    let worker = tokio::spawn(async move { d.handle(&message).await });
    receiver.wait_for(1, TIMEOUT).await;
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());

    // Nothing was recorded, and the delivery is still leased to the dead worker.
    let delivery = deliveries_of(&pool, hook.endpoint.id).await.remove(0);
    assert_eq!(
        (delivery.status.as_str(), delivery.attempts.len()),
        ("pending", 0)
    );
    assert_eq!(pipeline.relay().await.enqueued, 0);
    let started = Instant::now();
    while pipeline.relay().await.enqueued == 0 {
        assert!(started.elapsed() < TIMEOUT, "the lease never ran out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipeline.deliver_queued().await;
    let requests = receiver.wait_for(2, TIMEOUT).await;
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("webhook-id"), Some("1"));
        assert!(verifies(&hook.secret, request));
    }
    let delivery = deliveries_of(&pool, hook.endpoint.id).await.remove(0);
    assert_eq!(delivery.status, "succeeded");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_local_worker_delivers_every_event_and_survives_a_restart(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let d = deliverer(&pool, fast_settings(), Duration::from_secs(2));
    let hook = endpoint(&d, &receiver.url(), &["*"]).await;
    let running = tokio::spawn(worker::run(d.clone(), worker::EVERY));

    // Latency from commit to the receiver, event by event, spread over a few periods.
    let mut latencies = Vec::new();
    for n in 0..8u64 {
        tokio::time::sleep(Duration::from_millis(137 * n % 1000)).await;
        let committed = Instant::now();
        emit(&pool, EventType::OrderCreated, json!({"n": n})).await;
        receiver.wait_for(n as usize + 1, TIMEOUT).await;
        latencies.push(committed.elapsed());
    }
    latencies.sort();
    eprintln!(
        "local worker, commit to receiver over {} events: min {:?}, median {:?}, max {:?}",
        latencies.len(),
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );

    // Killed while an attempt hangs, then started again: the event still arrives.
    receiver.script([Reply::Hang]);
    emit(&pool, EventType::OrderPaid, json!({"n": 8})).await;
    receiver.wait_for(9, TIMEOUT).await;
    running.abort();
    let _ = running.await;
    emit(&pool, EventType::OrderPaid, json!({"n": 9})).await;
    let restarted = tokio::spawn(worker::run(d.clone(), worker::EVERY));
    receiver.wait_for(11, TIMEOUT).await;
    let started = Instant::now();
    loop {
        let statuses: Vec<String> = deliveries_of(&pool, hook.endpoint.id)
            .await
            .into_iter()
            .map(|d| d.status)
            .collect();
        if statuses.iter().all(|s| s == "succeeded") {
            break;
        }
        assert!(started.elapsed() < TIMEOUT, "{statuses:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    restarted.abort();
    let counts = ids_received(&receiver);
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert_eq!(counts["9"], 2, "the event in flight at the kill came again");
}
