//! The outbox and the feed over a real database: an event exists exactly when its
//! transaction commits, and a reader following `after` never misses one, however the
//! transactions that wrote them interleave.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain::events::{self, Event, EventQuery, EventType};
use domain::page::Page;
use serde_json::{Value, json};
use sqlx::MySqlPool;

async fn publish(pool: &MySqlPool) -> Vec<events::Published> {
    let mut tx = pool.begin().await.unwrap();
    let published = events::publish_in(&mut tx, 500).await.unwrap();
    tx.commit().await.unwrap();
    published
}

async fn feed(pool: &MySqlPool, after: u64) -> Vec<Event> {
    let query = EventQuery {
        after: Some(after),
        limit: serde_json::from_value(json!(100)).unwrap(),
        ..EventQuery::default()
    };
    events::list(pool, &query).await.unwrap().items
}

fn data(event: &Event) -> Value {
    serde_json::from_str(event.data.get()).unwrap()
}

async fn count(pool: &MySqlPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_event_exists_exactly_when_its_transaction_commits(pool: MySqlPool) {
    let mut tx = pool.begin().await.unwrap();
    events::record(&mut tx, EventType::OrderCreated, &json!({"id": 1}))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&pool).await, 0);

    common::emit(
        &pool,
        EventType::OrderCreated,
        json!({"id": 2, "total": "9.99"}),
    )
    .await;
    assert_eq!(count(&pool).await, 1);
    // Written, but not in the feed until published.
    assert!(feed(&pool, 0).await.is_empty());
    let published = publish(&pool).await;
    assert_eq!(published.len(), 1);
    let shown = feed(&pool, 0).await;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].id, 1);
    assert_eq!(shown[0].kind, "order.created");
    assert_eq!(data(&shown[0]), json!({"id": 2, "total": "9.99"}));
    let as_json = serde_json::to_value(&shown[0]).unwrap();
    assert_eq!(as_json["type"], "order.created");
    assert!(as_json["created_at"].as_str().unwrap().ends_with('Z'));
    // Publishing again publishes nothing twice.
    assert!(publish(&pool).await.is_empty());
}

/// The ordering problem with two real transactions: T1 writes first and commits last.
/// Numbered by AUTO_INCREMENT, T1's event would be smaller than T2's and a reader that had
/// already passed T2's would never see it.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_reader_never_misses_an_event_committed_late(pool: MySqlPool) {
    let mut t1 = pool.begin().await.unwrap();
    events::record(&mut t1, EventType::OrderCreated, &json!({"tx": 1}))
        .await
        .unwrap();
    let mut t2 = pool.begin().await.unwrap();
    events::record(&mut t2, EventType::OrderPaid, &json!({"tx": 2}))
        .await
        .unwrap();
    t2.commit().await.unwrap();

    // T1 is still open: the publisher neither waits for it nor numbers its event.
    let published = tokio::time::timeout(Duration::from_secs(5), publish(&pool))
        .await
        .expect("the publisher waited for a transaction still running");
    assert_eq!(published.len(), 1);
    let seen = feed(&pool, 0).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(data(&seen[0]), json!({"tx": 2}));
    let last_seen = seen[0].id;

    t1.commit().await.unwrap();
    publish(&pool).await;
    let later = feed(&pool, last_seen).await;
    assert_eq!(later.len(), 1, "the late commit was skipped by a reader");
    assert_eq!(data(&later[0]), json!({"tx": 1}));
    assert!(later[0].id > last_seen);

    // It was written first: its insert sequence is the smaller one.
    let seqs: Vec<(u64, Option<u64>)> = sqlx::query_as("SELECT seq, id FROM events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(seqs, vec![(1, Some(2)), (2, Some(1))]);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn events_of_one_transaction_keep_their_order(pool: MySqlPool) {
    common::emit(&pool, EventType::ProductOutOfStock, json!({"n": 0})).await;
    let mut tx = pool.begin().await.unwrap();
    events::record(&mut tx, EventType::PaymentCreated, &json!({"n": 1}))
        .await
        .unwrap();
    events::record(&mut tx, EventType::OrderPaid, &json!({"n": 2}))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    publish(&pool).await;
    let kinds: Vec<(u64, String)> = feed(&pool, 0)
        .await
        .into_iter()
        .map(|e| (e.id, e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, "product.out_of_stock".to_string()),
            (2, "payment.created".to_string()),
            (3, "order.paid".to_string())
        ]
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_feed_filters_by_type_and_pages(pool: MySqlPool) {
    for n in 0..7 {
        let kind = if n % 2 == 0 {
            EventType::OrderCreated
        } else {
            EventType::OrderShipped
        };
        common::emit(&pool, kind, json!({"n": n})).await;
    }
    publish(&pool).await;
    let query = |after, kind, limit: u32, cursor| EventQuery {
        after,
        kind,
        limit: serde_json::from_value(json!(limit)).unwrap(),
        cursor,
    };
    let shipped = events::list(&pool, &query(None, Some(EventType::OrderShipped), 20, None))
        .await
        .unwrap();
    let ids: Vec<u64> = shipped.items.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![2, 4, 6]);
    assert!(shipped.next_cursor.is_none());
    let after = events::list(&pool, &query(Some(4), None, 20, None))
        .await
        .unwrap();
    assert_eq!(
        after.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    // Pages of two, by cursor, walk everything once.
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page: Page<Event> = events::list(&pool, &query(None, None, 2, cursor))
            .await
            .unwrap();
        walked.extend(page.items.iter().map(|e| e.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, (1..=7).collect::<Vec<_>>());
    // Query strings: an unknown type and a non-numeric `after` are refused.
    let parse = |q: &str| serde_urlencoded::from_str::<EventQuery>(q);
    assert!(parse("type=order.updated").is_err());
    assert!(parse("after=abc").is_err());
    assert!(parse("after=-1").is_err());
    assert_eq!(
        parse("type=order.paid&after=3").unwrap().kind,
        Some(EventType::OrderPaid)
    );
    assert!(
        events::list(&pool, &query(None, None, 2, Some("junk".into())))
            .await
            .is_err()
    );
}

/// Many writers committing and rolling back at random, two publishers and a reader that
/// tails the feed with `after`, all at once. The reader must see every committed event
/// exactly once, no rolled back one, the ids without a gap, and each transaction's events
/// in the order written.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn concurrent_writers_publishers_and_a_tailing_reader(pool: MySqlPool) {
    const WRITERS: u64 = 8;
    const TXS: u64 = 25;
    let done = Arc::new(AtomicBool::new(false));
    // Set once the last publication after every writer has committed.
    let all_published = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..2)
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    publish(&pool).await;
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        })
        .collect();
    let reader = {
        let (pool, all_published) = (pool.clone(), all_published.clone());
        tokio::spawn(async move {
            let mut seen: Vec<Event> = Vec::new();
            loop {
                let finished = all_published.load(Ordering::SeqCst);
                let after = seen.last().map_or(0, |e| e.id);
                let page = feed(&pool, after).await;
                let empty = page.is_empty();
                seen.extend(page);
                if finished && empty {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut committed = Vec::new();
                for t in 0..TXS {
                    let mut tx = pool.begin().await.unwrap();
                    let n = 1 + (w + t) % 3;
                    for i in 0..n {
                        let data = json!({"w": w, "t": t, "i": i});
                        events::record(&mut tx, EventType::OrderCreated, &data)
                            .await
                            .unwrap();
                        // Hold the transaction open a little, so commits and writes interleave.
                        tokio::time::sleep(Duration::from_millis((w * 7 + t * 3 + i) % 5)).await;
                    }
                    if (w * 31 + t * 17) % 4 == 0 {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                        committed.extend((0..n).map(|i| (w, t, i)));
                    }
                }
                committed
            })
        })
        .collect();
    let mut committed = HashSet::new();
    for writer in writers {
        committed.extend(writer.await.unwrap());
    }
    // One last publication after every writer is done, then the reader drains.
    done.store(true, Ordering::SeqCst);
    for p in publishers {
        p.await.unwrap();
    }
    publish(&pool).await;
    all_published.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let ids: Vec<u64> = seen.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=seen.len() as u64).collect::<Vec<_>>(),
        "ids skipped or repeated"
    );
    let mut by_tx: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    let mut got = HashSet::new();
    for event in &seen {
        let d = data(event);
        let key = (
            d["w"].as_u64().unwrap(),
            d["t"].as_u64().unwrap(),
            d["i"].as_u64().unwrap(),
        );
        assert!(got.insert(key), "{key:?} seen twice");
        by_tx.entry((key.0, key.1)).or_default().push(key.2);
    }
    let missed: Vec<_> = committed.difference(&got).collect();
    assert!(
        missed.is_empty(),
        "the reader missed {} committed events: {missed:?}",
        missed.len()
    );
    let phantom: Vec<_> = got.difference(&committed).collect();
    assert!(
        phantom.is_empty(),
        "rolled back events were published: {phantom:?}"
    );
    for (tx, order) in by_tx {
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "transaction {tx:?} out of order: {order:?}"
        );
    }
    assert!(
        committed.len() > 100,
        "too few events to mean anything: {}",
        committed.len()
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn events_past_retention_are_purged_in_batches(pool: MySqlPool) {
    for n in 0..5 {
        common::emit(&pool, EventType::OrderCreated, json!({"n": n})).await;
    }
    publish(&pool).await;
    // One more that no relay published yet.
    common::emit(&pool, EventType::OrderCreated, json!({"n": 5})).await;
    sqlx::query("UPDATE events SET created_at = UTC_TIMESTAMP(6) - INTERVAL 31 DAY WHERE seq <> 2")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(events::purge(&pool, 2).await.unwrap(), 2);
    assert_eq!(events::purge(&pool, 2).await.unwrap(), 2);
    assert_eq!(events::purge(&pool, 2).await.unwrap(), 0);
    // Left: the recent one, and the unpublished one (kept until published).
    let left: Vec<(u64, Option<u64>)> = sqlx::query_as("SELECT seq, id FROM events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec![(2, Some(2)), (6, None)]);
    // Younger than the retention: kept.
    sqlx::query("UPDATE events SET created_at = UTC_TIMESTAMP(6) - INTERVAL 29 DAY")
        .execute(&pool)
        .await
        .unwrap();
    publish(&pool).await;
    assert_eq!(events::purge(&pool, 100).await.unwrap(), 0);
}

/// `make reset` empties every table, the publisher's counter included.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn publishing_goes_on_when_the_counter_row_is_gone(pool: MySqlPool) {
    common::emit(&pool, EventType::OrderCreated, json!({"n": 1})).await;
    publish(&pool).await;
    sqlx::query("DELETE FROM event_publisher")
        .execute(&pool)
        .await
        .unwrap();
    common::emit(&pool, EventType::OrderCreated, json!({"n": 2})).await;
    let published = publish(&pool).await;
    assert_eq!(published.iter().map(|p| p.id).collect::<Vec<_>>(), vec![2]);
    sqlx::query("TRUNCATE TABLE event_publisher")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM events")
        .execute(&pool)
        .await
        .unwrap();
    common::emit(&pool, EventType::OrderCreated, json!({"n": 3})).await;
    assert_eq!(publish(&pool).await[0].id, 1);
}
