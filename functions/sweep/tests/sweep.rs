//! The scheduled sweep against a real database, invoked with the event EventBridge sends.

use std::time::Duration;

use domain::housekeeping::Report;
use domain::role::Role;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use sweep::Sweeper;
use testkit::{TcpProxy, expire_order, in_parallel, insert_user, state};

/// The hold the test orders are placed with, and the sweep is told of.
const HOLD: Duration = Duration::from_secs(1800);

/// One sweep now, as an invocation that found work due runs it.
async fn sweep_now(pool: &MySqlPool) -> Report {
    let outcome = Sweeper::new(HOLD)
        .sweep(pool, scheduled_event())
        .await
        .unwrap();
    assert!(!outcome.skipped);
    outcome.report.unwrap()
}

/// What EventBridge delivers for a `rate(1 minute)` schedule.
fn scheduled_event() -> LambdaEvent<Value> {
    let payload = json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-30T12:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/shop-api-Sweep"],
        "detail": {}
    });
    let mut context = Context::default();
    // A minute from now, as Lambda would set it for the function's timeout.
    context.deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    LambdaEvent::new(payload, context)
}

async fn product(pool: &MySqlPool, stock: u32) -> u64 {
    testkit::insert_product(pool, "Mug", "5", stock).await
}

/// A pending order placed through the domain code, so that it takes its stock as any order.
async fn order(pool: &MySqlPool, user: u64, lines: &[(u64, u32)]) -> u64 {
    let lines: Vec<domain::orders::WantedLine> = lines
        .iter()
        .enumerate()
        .map(|(i, (product, quantity))| {
            domain::orders::WantedLine::new(domain::orders::Item::Product(*product), *quantity, i)
        })
        .collect();
    platform::db::transaction(pool, move |tx| {
        let lines = lines.clone();
        Box::pin(async move {
            let limits = domain::orders::Limits {
                hold: HOLD,
                max_pending: 1000,
            };
            let caller = domain::caller::Caller {
                id: user,
                role: domain::role::Role::Customer,
            };
            let shipping = domain::addresses::Shipping::Nowhere;
            let buyer = domain::orders::Buyer::For {
                caller,
                owner: user,
            };
            let placed = domain::orders::place(tx, buyer, &lines, &shipping, None, limits).await?;
            placed.take_stock(tx).await?;
            Ok::<_, domain::error::Error>(placed.order().id)
        })
    })
    .await
    .unwrap()
}

async fn stock(pool: &MySqlPool, product: u64) -> u32 {
    testkit::stock_of(pool, product).await
}

async fn status(pool: &MySqlPool, order: u64) -> (String, String) {
    sqlx::query_as(
        "SELECT CAST(status AS CHAR), CAST(amount_paid AS CHAR) FROM orders WHERE id = ?",
    )
    .bind(order)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn count(pool: &MySqlPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_sweep_settles_expired_holds_and_nothing_else(pool: MySqlPool) {
    let user = insert_user(&state(pool.clone()), Role::Customer).await.id;
    let (a, b) = (product(&pool, 100).await, product(&pool, 50).await);

    let expired = order(&pool, user, &[(a, 3), (b, 2)]).await;
    let fresh = order(&pool, user, &[(a, 1)]).await;
    let paid = order(&pool, user, &[(a, 4)]).await;
    let part_paid = order(&pool, user, &[(a, 2)]).await;
    sqlx::query("UPDATE orders SET status = 'paid', amount_paid = total WHERE id = ?")
        .bind(paid)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO payments (order_id, amount, method) VALUES (?, 4, 'card')")
        .bind(part_paid)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE orders SET amount_paid = 4 WHERE id = ?")
        .bind(part_paid)
        .execute(&pool)
        .await
        .unwrap();
    for id in [expired, paid, part_paid] {
        expire_order(&pool, id).await;
    }
    assert_eq!(stock(&pool, a).await, 90);
    assert_eq!(stock(&pool, b).await, 48);

    let report = sweep_now(&pool).await;
    assert_eq!(report.expired_orders, 2, "{report:?}");
    assert!(!report.incomplete);
    assert_eq!(stock(&pool, a).await, 95, "3 + 2 units back");
    assert_eq!(stock(&pool, b).await, 50);
    assert_eq!(
        status(&pool, expired).await,
        ("cancelled".into(), "0.00".into())
    );
    assert_eq!(
        status(&pool, part_paid).await,
        ("cancelled".into(), "0.00".into())
    );
    assert_eq!(status(&pool, fresh).await.0, "pending");
    assert_eq!(
        status(&pool, paid).await.0,
        "paid",
        "a paid order has no hold"
    );
    let refunded = count(
        &pool,
        "SELECT COUNT(*) FROM payments WHERE status = 'refunded'",
    )
    .await;
    assert_eq!(
        refunded, 1,
        "the payment on the expired order is refunded, not lost"
    );

    // Nothing left to do: a second sweep changes nothing.
    let again = sweep_now(&pool).await;
    assert_eq!(again, Report::default());
    assert_eq!(stock(&pool, a).await, 95);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn old_idempotency_records_and_passed_throttle_windows_are_deleted(pool: MySqlPool) {
    let user = insert_user(&state(pool.clone()), Role::Customer).await.id;
    // More than two batches of each, so the batching loop is exercised.
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, route, request_hash, response_status, response_body, created_at)
         SELECT ?, CONCAT('old-', seq), 'POST /orders', REPEAT('0', 64), 201, '{}', UTC_TIMESTAMP(6) - INTERVAL 25 HOUR
         FROM seq_1_to_2500",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, route, request_hash, response_status, response_body, created_at)
         SELECT ?, CONCAT('new-', seq), 'POST /orders', REPEAT('0', 64), 201, '{}', UTC_TIMESTAMP(6) - INTERVAL 23 HOUR
         FROM seq_1_to_10",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO login_throttle (email, client_address, failures, window_started_at)
         SELECT CONCAT('old-', seq, '@example.com'), '192.0.2.1', 5, UTC_TIMESTAMP(6) - INTERVAL 16 MINUTE FROM seq_1_to_2100",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO login_throttle (email, client_address, failures, window_started_at)
         SELECT CONCAT('new-', seq, '@example.com'), '192.0.2.1', 5, UTC_TIMESTAMP(6) - INTERVAL 14 MINUTE FROM seq_1_to_5",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO login_address_throttle (client_address, failures, window_started_at)
         SELECT CONCAT('10.0.', seq DIV 256, '.', seq MOD 256), 100, UTC_TIMESTAMP(6) - INTERVAL 16 MINUTE FROM seq_1_to_2300",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO login_address_throttle (client_address, failures, window_started_at)
         SELECT CONCAT('2001:db8:', seq, '::/64'), 100, UTC_TIMESTAMP(6) - INTERVAL 14 MINUTE FROM seq_1_to_7",
    )
    .execute(&pool)
    .await
    .unwrap();

    let report = sweep_now(&pool).await;
    assert_eq!(report.idempotency_keys_deleted, 2500, "{report:?}");
    assert_eq!(report.throttle_rows_deleted, 2100, "{report:?}");
    assert_eq!(report.address_throttle_rows_deleted, 2300, "{report:?}");
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM idempotency_keys WHERE idempotency_key LIKE 'new-%'"
        )
        .await,
        10,
        "records younger than 24 hours stay"
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM idempotency_keys").await,
        10
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM login_throttle").await,
        5,
        "windows still open stay, so throttling still holds"
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM login_address_throttle").await,
        7,
        "and so do the addresses' open windows"
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn overlapping_sweeps_settle_each_order_once(pool: MySqlPool) {
    let user = insert_user(&state(pool.clone()), Role::Customer).await.id;
    let mug = product(&pool, 2000).await;
    let mut orders = Vec::new();
    for _ in 0..700 {
        orders.push(order(&pool, user, &[(mug, 2)]).await);
    }
    sqlx::query("UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(stock(&pool, mug).await, 600);

    let reports = in_parallel(4, |_| {
        let pool = pool.clone();
        async move { sweep_now(&pool).await }
    })
    .await;

    let settled: u64 = reports.iter().map(|r| r.expired_orders).sum();
    assert_eq!(
        settled, 700,
        "each order settled by exactly one sweep: {reports:?}"
    );
    assert_eq!(
        stock(&pool, mug).await,
        2000,
        "every unit back exactly once"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'"
        )
        .await,
        700
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn after_a_look_the_schedule_waits_for_the_earliest_expiry(pool: MySqlPool) {
    let user = insert_user(&state(pool.clone()), Role::Customer).await.id;
    let mug = product(&pool, 10).await;
    let sweeper = Sweeper::new(HOLD);
    let scheduled = scheduled_event().payload;

    // An idle shop: no order pending. The next order cannot expire within one hold, so the
    // schedule stays away for the hold less the margin for transactions still open.
    let idle = sweeper.sweep(&pool, scheduled_event()).await.unwrap();
    assert_eq!(idle.next_look_in_seconds, 1740, "{idle:?}");
    let skipped = sweeper
        .skip(&scheduled)
        .expect("the next scheduled run skips");
    assert!(skipped.skipped && skipped.report.is_none());

    // An order whose hold runs out in two minutes brings the next look forward to it.
    let soon = order(&pool, user, &[(mug, 1)]).await;
    sqlx::query(
        "UPDATE orders SET expires_at = UTC_TIMESTAMP(6) + INTERVAL 120 SECOND WHERE id = ?",
    )
    .bind(soon)
    .execute(&pool)
    .await
    .unwrap();
    let pending = sweeper.sweep(&pool, scheduled_event()).await.unwrap();
    assert!(
        (118..=120).contains(&pending.next_look_in_seconds),
        "{pending:?}"
    );
    assert_eq!(status(&pool, soon).await.0, "pending");

    // Once the hold has run out, the look settles it.
    expire_order(&pool, soon).await;
    let due = sweeper.sweep(&pool, scheduled_event()).await.unwrap();
    assert_eq!(due.report.unwrap().expired_orders, 1);
    assert_eq!(due.next_look_in_seconds, 1740);
    assert_eq!(stock(&pool, mug).await, 10);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_unfinished_sweep_looks_again_at_the_next_run(pool: MySqlPool) {
    let user = insert_user(&state(pool.clone()), Role::Customer).await.id;
    let mug = product(&pool, 1000).await;
    // One batch more than a sweep settles before it checks its time.
    for _ in 0..=domain::housekeeping::ORDER_BATCH {
        order(&pool, user, &[(mug, 1)]).await;
    }
    sqlx::query("UPDATE orders SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND")
        .execute(&pool)
        .await
        .unwrap();
    // Five seconds left, all kept back for the answer: one batch, then the sweep stops.
    let mut event = scheduled_event();
    event.context.deadline = (std::time::SystemTime::now() + Duration::from_secs(5))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let outcome = Sweeper::new(HOLD).sweep(&pool, event).await.unwrap();
    let report = outcome.report.unwrap();
    assert!(report.incomplete, "{outcome:?}");
    assert_eq!(outcome.next_look_in_seconds, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_look_waits_for_a_database_that_is_resuming(pool: MySqlPool) {
    let user = insert_user(&state(pool.clone()), Role::Customer).await.id;
    let mug = product(&pool, 10).await;
    let expired = order(&pool, user, &[(mug, 4)]).await;
    expire_order(&pool, expired).await;
    // The database behind a port that refuses connections for its first five seconds, as
    // a paused cluster does while it resumes: longer than the pool waits for a connection.
    let options = pool.connect_options();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let resuming = platform::db::pool_with(
        (*options).clone().host("127.0.0.1").port(proxy.addr.port()),
        2,
    );
    proxy.stop();
    let run =
        tokio::spawn(async move { Sweeper::new(HOLD).sweep(&resuming, scheduled_event()).await });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!run.is_finished(), "still waiting for the database");
    proxy.restart().await;

    let outcome = run.await.unwrap().unwrap();
    assert_eq!(outcome.report.unwrap().expired_orders, 1);
    assert_eq!(stock(&pool, mug).await, 10);
}

/// Events older than the 30 days they are kept, finished deliveries and attempts past the
/// same retention go, in batches; newer ones, pending deliveries and the events they still
/// name stay.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn events_deliveries_and_attempts_past_their_retention_are_deleted(pool: MySqlPool) {
    // 2,100 old published events (more than two batches), 5 recent, 1 old and unpublished.
    sqlx::query(
        "INSERT INTO events (id, type, data, created_at, published_at)
         SELECT seq, 'order.created', '{}', UTC_TIMESTAMP(6) - INTERVAL 31 DAY,
                UTC_TIMESTAMP(6) - INTERVAL 31 DAY
         FROM seq_1_to_2100",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO events (id, type, data, created_at, published_at)
         SELECT 3000 + seq, 'order.paid', '{}', UTC_TIMESTAMP(6) - INTERVAL 29 DAY,
                UTC_TIMESTAMP(6) - INTERVAL 29 DAY
         FROM seq_1_to_5",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO events (type, data, created_at)
         VALUES ('order.paid', '{}', UTC_TIMESTAMP(6) - INTERVAL 40 DAY)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let endpoint = sqlx::query(
        "INSERT INTO webhook_endpoints (url, secret_sealed) VALUES ('https://example.com/', 'x')",
    )
    .execute(&pool)
    .await
    .unwrap()
    .last_insert_id();
    // Old events 1..=1200 were delivered long ago (finished); 1201..=1210 are still being
    // retried, so they and their events stay.
    sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_seq, status, created_at)
         SELECT ?, e.seq, IF(e.id <= 1200, 'succeeded', 'pending'), e.created_at
         FROM events e WHERE e.id <= 1210",
    )
    .bind(endpoint)
    .execute(&pool)
    .await
    .unwrap();
    // Attempts: one old per old delivery, one recent on a pending one.
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, at, status_code, duration_ms)
         SELECT id, created_at, 500, 10 FROM webhook_deliveries",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, at, status_code, duration_ms)
         SELECT MAX(id), UTC_TIMESTAMP(6), 500, 10 FROM webhook_deliveries",
    )
    .execute(&pool)
    .await
    .unwrap();

    let report = sweep_now(&pool).await;
    assert!(!report.incomplete, "{report:?}");
    assert_eq!(report.webhook_attempts_deleted, 1210, "{report:?}");
    assert_eq!(report.webhook_deliveries_deleted, 1200, "{report:?}");
    assert_eq!(report.events_deleted, 2100 - 10, "{report:?}");
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM webhook_attempts").await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'"
        )
        .await,
        10
    );
    // The 10 still delivering, the 5 recent, the unpublished one.
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM events").await, 16);
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM events WHERE id > 3000").await,
        5
    );
    assert_eq!(sweep_now(&pool).await.events_deleted, 0);
}
