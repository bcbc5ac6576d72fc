//! The relay: publishes committed events, fans each out to the endpoints that want it (one
//! delivery per event and endpoint), and hands due deliveries to the queue.
//!
//! Order per endpoint: an endpoint has at most one delivery in flight, always its oldest
//! due one (the relay leases nothing for an endpoint that has one in flight, and a worker
//! that succeeds goes on with the next, in order). A delivery waiting for a retry is not
//! due, so the ones after it go ahead: in order as far as retries allow.
//!
//! Leases: a delivery handed to the queue is leased for `queue_lease`; a worker that takes
//! it leases it again for its attempt. A message lost, or a relay or worker killed midway,
//! only delays the delivery until the lease runs out and the relay hands it out again.

use std::time::{Duration, Instant};

use platform::crypto::random_u64;
use platform::queue::Queue;
use sqlx::MySqlPool;

use crate::error::{Error, Result};
use crate::events::publish_in;
use crate::webhooks::lease::{Ticket, lease_next};
use crate::webhooks::schedule::Settings;

/// What one relay run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    pub published: u64,
    pub deliveries_created: u64,
    pub enqueued: u64,
}

/// One run: publish everything committed, then hand out what is due.
pub async fn step(
    pool: &MySqlPool,
    queue: &impl Queue,
    settings: &Settings,
) -> Result<RelayReport> {
    let (published, deliveries_created) = publish(pool, settings).await?;
    let enqueued = enqueue_due(pool, queue, settings).await?;
    Ok(RelayReport {
        published,
        deliveries_created,
        enqueued,
    })
}

/// Runs [`step`] every `every` until `budget` is spent: what a relay invoked once a minute
/// does to keep delivery prompt in between. A failed run is logged and the next one tried.
pub async fn run_for(
    pool: &MySqlPool,
    queue: &impl Queue,
    settings: &Settings,
    budget: Duration,
    every: Duration,
) -> RelayReport {
    let deadline = Instant::now() + budget;
    let mut total = RelayReport::default();
    loop {
        match step(pool, queue, settings).await {
            Ok(report) => {
                total.published += report.published;
                total.deliveries_created += report.deliveries_created;
                total.enqueued += report.enqueued;
            }
            Err(err) => tracing::warn!(error = %err, "relay run failed"),
        }
        if Instant::now() + every >= deadline {
            return total;
        }
        tokio::time::sleep(every).await;
    }
}

/// Publishes committed events in batches, each with its fan-out in the same transaction;
/// returns (events published, deliveries created).
pub async fn publish(pool: &MySqlPool, settings: &Settings) -> Result<(u64, u64)> {
    let (mut events, mut deliveries) = (0, 0);
    let batch = settings.publish_batch;
    loop {
        let (published, created) = platform::db::transaction(pool, |tx| {
            Box::pin(async move {
                let published = publish_in(tx, batch).await?;
                let (Some(first), Some(last)) = (published.first(), published.last()) else {
                    return Ok::<_, Error>((0, 0));
                };
                // Every enabled endpoint subscribed to the type, or to everything, that
                // existed when the event happened: an endpoint receives what happens from
                // its creation on, however long the relay took to publish what came before.
                let created = sqlx::query!(
                    "INSERT INTO webhook_deliveries
                         (endpoint_id, event_seq, next_attempt_at, created_at, updated_at)
                     SELECT w.id, e.seq, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
                     FROM events e JOIN webhook_endpoints w
                       ON w.enabled = TRUE AND w.created_at <= e.created_at
                     WHERE e.id BETWEEN ? AND ?
                       AND EXISTS (SELECT 1 FROM webhook_subscriptions s
                                   WHERE s.endpoint_id = w.id AND s.event_type IN ('*', e.type))
                     ORDER BY e.id, w.id",
                    first.id,
                    last.id
                )
                .execute(&mut **tx)
                .await?
                .rows_affected();
                Ok((published.len() as u64, created))
            })
        })
        .await?;
        events += published;
        deliveries += created;
        if published < u64::from(batch) {
            return Ok((events, deliveries));
        }
    }
}

/// Leases the oldest due delivery of every endpoint that has nothing in flight, and sends
/// one message for each. If the queue refuses them, the leases are given back so the next
/// run tries again at once.
pub async fn enqueue_due(pool: &MySqlPool, queue: &impl Queue, settings: &Settings) -> Result<u64> {
    // The endpoints waiting longest first, so that none waits for ever behind a full batch.
    let endpoints = sqlx::query_scalar!(
        "SELECT endpoint_id FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= UTC_TIMESTAMP(6)
         GROUP BY endpoint_id ORDER BY MIN(next_attempt_at) LIMIT ?",
        settings.enqueue_batch
    )
    .fetch_all(pool)
    .await?;
    let mut tickets = Vec::new();
    let duration = settings.queue_lease;
    for endpoint in endpoints {
        let lease = random_u64();
        let leased = platform::db::transaction(pool, |tx| {
            Box::pin(async move { lease_next(tx, endpoint, lease, duration).await })
        })
        .await?;
        if let Some(delivery) = leased {
            tickets.push(Ticket { delivery, lease });
        }
    }
    if tickets.is_empty() {
        return Ok(0);
    }
    let bodies = tickets.iter().map(Ticket::encode).collect();
    if let Err(err) = queue.send(bodies).await {
        for ticket in &tickets {
            let _ = sqlx::query!(
                "UPDATE webhook_deliveries SET lease = NULL, leased_until = NULL
                 WHERE id = ? AND lease = ?",
                ticket.delivery,
                ticket.lease
            )
            .execute(pool)
            .await;
        }
        return Err(Error::Unavailable(err.to_string()));
    }
    Ok(tickets.len() as u64)
}
