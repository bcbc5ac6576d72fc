//! Webhooks end to end at library level: outbox -> relay -> queue -> delivery step -> a
//! receiver on loopback that checks every signature, over a real database.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Receiver, Reply};
use common::{Pipeline, body, deliverer, deliveries_of, emit, endpoint, fast_settings, verifies};
use domain::events::{self, EventQuery, EventType};
use domain::webhooks::deliveries;
use domain::webhooks::endpoints;
use domain::webhooks::schedule::Settings;
use serde_json::json;
use sqlx::MySqlPool;

const TIMEOUT: Duration = Duration::from_secs(5);

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_event_arrives_signed_with_its_id(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    emit(
        &pool,
        EventType::OrderCreated,
        json!({"id": 7, "total": "19.99"}),
    )
    .await;
    emit(
        &pool,
        EventType::OrderPaid,
        json!({"id": 7, "status": "paid"}),
    )
    .await;
    emit(
        &pool,
        EventType::ProductOutOfStock,
        json!({"id": 3, "variant_id": 9}),
    )
    .await;
    pipeline.pump().await;

    let requests = receiver.wait_for(3, TIMEOUT).await;
    let feed = events::list(&pool, &EventQuery::default())
        .await
        .unwrap()
        .items;
    assert_eq!(feed.len(), 3);
    for (request, event) in requests.iter().zip(&feed) {
        assert!(
            verifies(&hook.secret, request),
            "a signature did not verify"
        );
        assert_eq!(
            request.header("webhook-id"),
            Some(event.id.to_string().as_str())
        );
        let sent_at: i64 = request
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!((sent_at - chrono::Utc::now().timestamp()).abs() < 60);
        assert_eq!(body(request), serde_json::to_value(event).unwrap());
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    assert_eq!(body(&requests[1])["type"], "order.paid");
    assert_eq!(
        body(&requests[2])["data"],
        json!({"id": 3, "variant_id": 9})
    );
    // Another secret does not verify them.
    let other = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    assert!(!verifies(&other.secret, &requests[0]));

    let shown = deliveries_of(&pool, hook.endpoint.id).await;
    assert_eq!(shown.len(), 3);
    for (delivery, event) in shown.iter().zip(&feed) {
        assert_eq!(delivery.status, "succeeded");
        assert_eq!(delivery.event_id, event.id);
        assert_eq!(delivery.event_type, event.kind);
        assert_eq!(delivery.next_attempt_at, None);
        assert_eq!(delivery.attempts.len(), 1);
        assert_eq!(delivery.attempts[0].status_code, Some(200));
        assert_eq!(delivery.attempts[0].error, None);
    }
    // Nothing is sent twice.
    pipeline.pump().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.requests().len(), 3);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn each_endpoint_gets_the_types_it_asked_for(pool: MySqlPool) {
    let paid_only = Receiver::start(Reply::Status(200)).await;
    let everything = Receiver::start(Reply::Status(204)).await;
    let disabled = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    endpoint(
        &pipeline.deliverer,
        &paid_only.url(),
        &["order.paid", "payment.refunded"],
    )
    .await;
    endpoint(&pipeline.deliverer, &everything.url(), &["*"]).await;
    let off = endpoint(&pipeline.deliverer, &disabled.url(), &["*"]).await;
    sqlx::query("UPDATE webhook_endpoints SET enabled = FALSE WHERE id = ?")
        .bind(off.endpoint.id)
        .execute(&pool)
        .await
        .unwrap();
    emit(&pool, EventType::OrderCreated, json!({"n": 1})).await;
    emit(&pool, EventType::OrderPaid, json!({"n": 2})).await;
    let report = pipeline.relay().await;
    assert_eq!(report.published, 2);
    assert_eq!(report.deliveries_created, 3);
    pipeline.deliver_queued().await;
    pipeline.pump().await;
    everything.wait_for(2, TIMEOUT).await;
    let paid = paid_only.wait_for(1, TIMEOUT).await;
    assert_eq!(body(&paid[0])["type"], "order.paid");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(paid_only.requests().len(), 1);
    assert_eq!(disabled.connections(), 0);
}

/// Publishing can lag (the relay's wake-ups are paced, and its schedule is a minute): an
/// event that happened before an endpoint existed is not delivered to it, however late the
/// relay publishes it.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_endpoint_gets_what_happens_from_its_creation_on(pool: MySqlPool) {
    let early = Receiver::start(Reply::Status(200)).await;
    let late = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    let first = endpoint(&pipeline.deliverer, &early.url(), &["*"]).await;
    emit(&pool, EventType::OrderCreated, json!({"n": 1})).await;
    // Not yet published when the second endpoint is created.
    let second = endpoint(&pipeline.deliverer, &late.url(), &["*"]).await;
    emit(&pool, EventType::OrderPaid, json!({"n": 2})).await;

    let report = pipeline.relay().await;
    assert_eq!(report.published, 2);
    assert_eq!(
        report.deliveries_created, 3,
        "two for the first, one for the second"
    );
    pipeline.deliver_queued().await;
    pipeline.pump().await;
    early.wait_for(2, TIMEOUT).await;
    let got = late.wait_for(1, TIMEOUT).await;
    assert_eq!(body(&got[0])["type"], "order.paid");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(late.requests().len(), 1);
    let types = |deliveries: Vec<deliveries::Delivery>| {
        deliveries
            .iter()
            .map(|d| serde_json::to_value(d).unwrap()["event_type"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        types(deliveries_of(&pool, first.endpoint.id).await),
        [json!("order.created"), json!("order.paid")]
    );
    assert_eq!(
        types(deliveries_of(&pool, second.endpoint.id).await),
        [json!("order.paid")]
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_failing_receiver_gets_the_same_webhook_id_until_it_recovers(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    receiver.script([Reply::Status(500), Reply::Status(503)]);
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    emit(&pool, EventType::OrderCancelled, json!({"id": 1})).await;
    let started = Instant::now();
    while receiver.requests().len() < 3 && started.elapsed() < TIMEOUT {
        pipeline.pump().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.header("webhook-id"), Some("1"));
        assert_eq!(request.body, requests[0].body);
        assert!(verifies(&hook.secret, request));
    }
    let shown = deliveries_of(&pool, hook.endpoint.id).await;
    assert_eq!(shown[0].status, "succeeded");
    let codes: Vec<Option<u16>> = shown[0].attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(503), Some(200)]);
    assert!(shown[0].attempts.windows(2).all(|w| w[0].at <= w[1].at));
    // The endpoint is healthy again.
    let failing: Option<chrono::NaiveDateTime> =
        sqlx::query_scalar("SELECT failing_since FROM webhook_endpoints WHERE id = ?")
            .bind(hook.endpoint.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(failing, None);
}

/// The contract's schedule, followed attempt by attempt (the clock advanced by moving
/// `next_attempt_at` to now): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 %, the
/// last no sooner than a day after the first attempt; then failed.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn retries_follow_the_contracts_schedule_then_fail(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(500)).await;
    let settings = Settings {
        queue_lease: Duration::from_millis(500),
        ..Settings::default()
    };
    let mut pipeline = Pipeline::new(deliverer(&pool, settings, TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    emit(&pool, EventType::OrderShipped, json!({"id": 1})).await;
    let expected = [5, 300, 1800, 7200, 18000, 36000, 86400];
    for (n, secs) in expected.iter().enumerate() {
        pipeline.pump().await;
        let delivery = &deliveries_of(&pool, hook.endpoint.id).await[0];
        assert_eq!(delivery.attempts.len(), n + 1);
        assert_eq!(delivery.status, "pending");
        let wait = (delivery.next_attempt_at.unwrap() - chrono::Utc::now()).num_milliseconds()
            as f64
            / 1000.0;
        let secs = *secs as f64;
        let (low, high) = if n == 6 {
            (secs - 60.0, secs * 1.2)
        } else {
            (secs * 0.8 - 2.0, secs * 1.2)
        };
        assert!(
            wait >= low && wait <= high,
            "retry {}: {wait} s, expected {low}..{high}",
            n + 1
        );
        sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = UTC_TIMESTAMP(6)")
            .execute(&pool)
            .await
            .unwrap();
    }
    pipeline.pump().await;
    let delivery = &deliveries_of(&pool, hook.endpoint.id).await[0];
    assert_eq!(delivery.attempts.len(), 8);
    assert_eq!(delivery.status, "failed");
    assert_eq!(delivery.next_attempt_at, None);
    // Failed is final: nothing more is sent.
    pipeline.pump().await;
    assert_eq!(receiver.requests().len(), 8);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_receiver_that_never_answers_times_out_and_holds_up_no_one(pool: MySqlPool) {
    let silent = Receiver::start(Reply::Hang).await;
    let prompt = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(
        &pool,
        fast_settings(),
        Duration::from_millis(800),
    ));
    let stuck = endpoint(&pipeline.deliverer, &silent.url(), &["*"]).await;
    endpoint(&pipeline.deliverer, &prompt.url(), &["*"]).await;
    emit(&pool, EventType::OrderCreated, json!({"id": 1})).await;
    let started = Instant::now();
    let pumping = {
        pipeline.relay().await;
        let messages: Vec<(String, String)> = pipeline
            .take_messages()
            .into_iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), m))
            .collect();
        assert_eq!(messages.len(), 2);
        let d = pipeline.deliverer.clone();
        tokio::spawn(async move { d.handle_batch(messages).await })
    };
    prompt.wait_for(1, TIMEOUT).await;
    let answered_after = started.elapsed();
    assert!(
        answered_after < Duration::from_millis(800),
        "the prompt receiver waited {answered_after:?}"
    );
    let failed = pumping.await.unwrap();
    assert!(
        failed.is_empty(),
        "a timeout is an outcome, not a failed message"
    );
    let attempt = &deliveries_of(&pool, stuck.endpoint.id).await[0];
    assert_eq!(attempt.status, "pending");
    assert_eq!(attempt.attempts[0].status_code, None);
    assert_eq!(
        attempt.attempts[0].error.as_deref(),
        Some("no answer within 0.8 s")
    );
    assert!(attempt.attempts[0].duration_ms >= 800);
    assert!(attempt.next_attempt_at.is_some());
    // The worker is free: the next event reaches the prompt receiver again.
    emit(&pool, EventType::OrderPaid, json!({"id": 1})).await;
    pipeline.relay().await;
    let messages = pipeline.take_messages();
    let d = pipeline.deliverer.clone();
    for m in messages {
        let d = d.clone();
        tokio::spawn(async move { d.handle(&m).await });
    }
    prompt.wait_for(2, TIMEOUT).await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed(pool: MySqlPool) {
    let elsewhere = Receiver::start(Reply::Status(200)).await;
    let redirecting = Receiver::start(Reply::Redirect(elsewhere.url())).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, Settings::default(), TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &redirecting.url(), &["*"]).await;
    emit(&pool, EventType::OrderCreated, json!({"id": 1})).await;
    pipeline.pump().await;
    let delivery = &deliveries_of(&pool, hook.endpoint.id).await[0];
    assert_eq!(delivery.status, "pending");
    assert_eq!(delivery.attempts[0].status_code, Some(302));
    assert_eq!(
        delivery.attempts[0].error.as_deref(),
        Some("redirects are not followed")
    );
    assert_eq!(redirecting.requests().len(), 1);
    assert_eq!(elsewhere.connections(), 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_endpoints_deliveries_go_in_order_as_far_as_retries_allow(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let settings = Settings {
        queue_lease: Duration::from_millis(500),
        ..Settings::default()
    };
    let mut pipeline = Pipeline::new(deliverer(&pool, settings, TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    for n in 0..6 {
        emit(&pool, EventType::OrderCreated, json!({"n": n})).await;
    }
    // One message for the endpoint; the worker goes on in order after each success.
    let report = pipeline.relay().await;
    assert_eq!(report.enqueued, 1);
    let messages = pipeline.take_messages();
    let handled = pipeline.deliverer.handle(&messages[0]).await.unwrap();
    assert_eq!(handled.attempts, 6);
    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["1", "2", "3", "4", "5", "6"]);

    // A failure waits for its retry; the events after it go ahead meanwhile.
    receiver.script([Reply::Status(500)]);
    for n in 6..9 {
        emit(&pool, EventType::OrderCreated, json!({"n": n})).await;
    }
    pipeline.pump().await;
    pipeline.pump().await;
    let ids: Vec<String> = receiver.requests()[6..]
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["7", "8", "9"]);
    let statuses: Vec<String> = deliveries_of(&pool, hook.endpoint.id)
        .await
        .into_iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(&statuses[6..], ["pending", "succeeded", "succeeded"]);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn one_delivery_per_endpoint_is_in_flight_at_a_time(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    receiver.script([Reply::Hang]);
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), Duration::from_secs(3)));
    endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    emit(&pool, EventType::OrderCreated, json!({"n": 1})).await;
    emit(&pool, EventType::OrderCreated, json!({"n": 2})).await;
    pipeline.relay().await;
    let first = pipeline.take_messages();
    assert_eq!(first.len(), 1);
    let d = pipeline.deliverer.clone();
    let message = first[0].clone();
    let in_flight = tokio::spawn(async move { d.handle(&message).await });
    receiver.wait_for(1, TIMEOUT).await;
    // The queue lease (500 ms) is long gone; the attempt's lease holds the endpoint.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(pipeline.relay().await.enqueued, 0);
    // A duplicate of the message does not start a second attempt either.
    assert_eq!(
        pipeline.deliverer.handle(&first[0]).await.unwrap().attempts,
        0
    );
    in_flight.abort();
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_endpoint_failing_for_three_days_is_disabled_and_says_so(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(500)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, Settings::default(), TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    let id = hook.endpoint.id;
    emit(&pool, EventType::OrderCreated, json!({"n": 1})).await;
    pipeline.pump().await;
    // Failing for two days: still enabled.
    let set_failing = |hours: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = UTC_TIMESTAMP(6) - INTERVAL ? HOUR",
            )
            .bind(hours)
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = UTC_TIMESTAMP(6) WHERE status = 'pending'")
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    set_failing(48).await;
    emit(&pool, EventType::OrderCreated, json!({"n": 2})).await;
    pipeline.pump().await;
    assert!(endpoints::get(&pool, id).await.unwrap().enabled);
    set_failing(73).await;
    pipeline.pump().await;
    let disabled = endpoints::get(&pool, id).await.unwrap();
    assert!(!disabled.enabled);
    let reason = disabled.disabled_reason.unwrap();
    assert!(
        reason.starts_with("Disabled automatically: no delivery has succeeded since "),
        "{reason}"
    );
    // Its pending deliveries are failed, and new events are not sent to it.
    let statuses: Vec<String> = deliveries_of(&pool, id)
        .await
        .into_iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, ["failed", "failed"]);
    let before = receiver.requests().len();
    emit(&pool, EventType::OrderCreated, json!({"n": 3})).await;
    let report = pipeline.relay().await;
    assert_eq!(report.deliveries_created, 0);
    pipeline.take_messages();
    assert_eq!(receiver.requests().len(), before);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn retry_now_makes_one_more_attempt(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(500)).await;
    let settings = Settings {
        retry_delays: vec![Duration::from_secs(3600)],
        ..fast_settings()
    };
    let mut pipeline = Pipeline::new(deliverer(&pool, settings, TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    let id = hook.endpoint.id;
    emit(&pool, EventType::PaymentRefunded, json!({"id": 4})).await;
    pipeline.pump().await;
    sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = UTC_TIMESTAMP(6)")
        .execute(&pool)
        .await
        .unwrap();
    pipeline.pump().await;
    let delivery = deliveries_of(&pool, id).await.remove(0);
    assert_eq!(delivery.status, "failed");
    assert_eq!(delivery.attempts.len(), 2);

    // Still failing: one attempt, and failed again, with no schedule.
    let retried = deliveries::retry(&pool, id, delivery.id).await.unwrap();
    assert_eq!(retried.status, "pending");
    assert!(retried.next_attempt_at.is_some());
    pipeline.pump().await;
    let delivery = deliveries_of(&pool, id).await.remove(0);
    assert_eq!(
        (delivery.status.as_str(), delivery.attempts.len()),
        ("failed", 3)
    );
    assert_eq!(delivery.next_attempt_at, None);

    // Recovered, and even with the endpoint disabled: an admin asked for it.
    receiver.answer(Reply::Status(200));
    sqlx::query("UPDATE webhook_endpoints SET enabled = FALSE")
        .execute(&pool)
        .await
        .unwrap();
    deliveries::retry(&pool, id, delivery.id).await.unwrap();
    pipeline.pump().await;
    let delivery = deliveries_of(&pool, id).await.remove(0);
    assert_eq!(
        (delivery.status.as_str(), delivery.attempts.len()),
        ("succeeded", 4)
    );
    let ids: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1", "1", "1", "1"]);
    // Unknown deliveries, or another endpoint's, are 404s.
    assert!(deliveries::retry(&pool, id + 1, delivery.id).await.is_err());
    assert!(deliveries::retry(&pool, id, delivery.id + 1).await.is_err());
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn deliveries_are_listed_newest_first_in_pages(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    let hook = endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    for n in 0..5 {
        emit(&pool, EventType::OrderCreated, json!({"n": n})).await;
    }
    pipeline.pump().await;
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let query = deliveries::DeliveryQuery {
            limit: serde_json::from_value(json!(2)).unwrap(),
            cursor,
        };
        let page = deliveries::list(&pool, hook.endpoint.id, &query)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|d| d.event_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);
    let shown = serde_json::to_value(&deliveries_of(&pool, hook.endpoint.id).await[0]).unwrap();
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(shown["next_attempt_at"], json!(null));
    assert_eq!(shown["attempts"][0]["status_code"], 200);
    assert!(shown["attempts"][0]["at"].as_str().unwrap().ends_with('Z'));
    let unknown = deliveries::list(
        &pool,
        hook.endpoint.id + 1,
        &deliveries::DeliveryQuery::default(),
    )
    .await;
    assert!(unknown.is_err());
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn old_attempts_and_deliveries_are_purged_in_batches(pool: MySqlPool) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let mut pipeline = Pipeline::new(deliverer(&pool, fast_settings(), TIMEOUT));
    endpoint(&pipeline.deliverer, &receiver.url(), &["*"]).await;
    for n in 0..5 {
        emit(&pool, EventType::OrderCreated, json!({"n": n})).await;
    }
    pipeline.pump().await;
    // Four are a month old; one of those is still pending (an admin's retry).
    sqlx::query("UPDATE webhook_attempts SET at = UTC_TIMESTAMP(6) - INTERVAL 31 DAY WHERE delivery_id <= 4")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE webhook_deliveries SET created_at = UTC_TIMESTAMP(6) - INTERVAL 31 DAY WHERE id <= 4")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET created_at = UTC_TIMESTAMP(6) - INTERVAL 31 DAY WHERE id <= 4")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE id = 4")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(deliveries::purge_attempts(&pool, 3).await.unwrap(), 3);
    assert_eq!(deliveries::purge_attempts(&pool, 3).await.unwrap(), 1);
    assert_eq!(deliveries::purge_attempts(&pool, 3).await.unwrap(), 0);
    assert_eq!(deliveries::purge(&pool, 2).await.unwrap(), 2);
    assert_eq!(deliveries::purge(&pool, 2).await.unwrap(), 1);
    assert_eq!(deliveries::purge(&pool, 2).await.unwrap(), 0);
    // Events go once their deliveries have: the pending one keeps its event.
    assert_eq!(events::purge(&pool, 10).await.unwrap(), 3);
    let left: Vec<u64> = sqlx::query_scalar("SELECT id FROM webhook_deliveries ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec![4, 5]);
    let events_left: Vec<u64> = sqlx::query_scalar("SELECT id FROM events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(events_left, vec![4, 5]);
}
