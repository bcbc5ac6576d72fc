//! The delivery step: takes a queue message naming a delivery, POSTs the event to the
//! endpoint, signed (Standard Webhooks), records the attempt and schedules the next one.
//!
//! A message is a [`Ticket`]: the delivery and the lease the relay took for it. The worker
//! claims the delivery under a lease of its own (so a duplicate message, or the relay
//! handing it out again, does not start a second attempt at once), sends, and records
//! the outcome in one transaction. A worker killed in between loses nothing: its lease runs
//! out and the relay hands the delivery out again, with the same `webhook-id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use platform::crypto::{SealingKey, random_u64};
use platform::db::{Tx, transaction};
use platform::outbound::{Outbound, Outcome};
use platform::webhook_signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use sqlx::MySqlPool;

use crate::error::{Error, Result};
use crate::events::by_seq;
use crate::webhooks::endpoints::{disable_in, signing_key};
use crate::webhooks::lease::{Claimed, Ticket, claim_in, lease_next};
use crate::webhooks::schedule::Settings;

/// What the delivery step needs. Cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    pub pool: MySqlPool,
    pub outbound: Outbound,
    pub sealing: Arc<SealingKey>,
    pub settings: Arc<Settings>,
}

/// Attempts made for one message (a success goes on with the endpoint's next deliveries).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    pub attempts: u32,
    pub succeeded: u32,
}

impl Deliverer {
    /// Handles one message. An error means it should come again (the queue redelivers it;
    /// after too many times it goes to the dead-letter queue); a message for a delivery
    /// that is done, not due, or being attempted by someone else is simply consumed.
    pub async fn handle(&self, message: &str) -> Result<Handled> {
        let ticket = Ticket::decode(message).ok_or_else(|| {
            Error::internal(format!(
                "not a delivery ticket: {:?}",
                message.chars().take(100).collect::<String>()
            ))
        })?;
        let started = Instant::now();
        let mut handled = Handled::default();
        let mut next = self.claim(ticket).await?;
        while let Some(claimed) = next {
            let outcome = self.attempt(&claimed).await?;
            handled.attempts += 1;
            if outcome.succeeded() {
                handled.succeeded += 1;
            }
            let go_on = started.elapsed() < self.settings.chain_budget;
            next = self.record(claimed, outcome, go_on).await?;
        }
        Ok(handled)
    }

    /// A batch of `(message id, body)`, handled at once; returns the ids of the messages
    /// to report as failed (an SQS batch's partial failures).
    pub async fn handle_batch(&self, messages: Vec<(String, String)>) -> Vec<String> {
        let tasks: Vec<_> = messages
            .into_iter()
            .map(|(id, body)| {
                let this = self.clone();
                (id, tokio::spawn(async move { this.handle(&body).await }))
            })
            .collect();
        let mut failed = Vec::new();
        for (id, task) in tasks {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(message = %id, error = %err, "delivery message failed");
                    failed.push(id);
                }
                Err(err) => {
                    tracing::error!(message = %id, error = %err, "delivery task panicked");
                    failed.push(id);
                }
            }
        }
        failed
    }

    fn attempt_lease(&self) -> Duration {
        self.outbound.policy().timeout + self.settings.attempt_margin
    }

    async fn claim(&self, ticket: Ticket) -> Result<Option<Claimed>> {
        let endpoint = sqlx::query_scalar!(
            "SELECT endpoint_id FROM webhook_deliveries WHERE id = ?",
            ticket.delivery
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(endpoint) = endpoint else {
            return Ok(None);
        };
        let duration = self.attempt_lease();
        transaction(&self.pool, |tx| {
            Box::pin(async move { claim_in(tx, endpoint, ticket, duration).await })
        })
        .await
    }

    /// Sends the event, signed. Never fails for the receiver's sake (that is an outcome);
    /// only when the database cannot give the event.
    async fn attempt(&self, claimed: &Claimed) -> Result<Outcome> {
        let mut conn = self.pool.acquire().await?;
        let event = by_seq(&mut conn, claimed.event_seq).await?;
        drop(conn);
        let key = match signing_key(&self.sealing, claimed.endpoint, &claimed.secret_sealed) {
            Ok(key) => key,
            Err(_) => {
                return Ok(Outcome {
                    status: None,
                    error: Some("the signing secret cannot be opened with this WEBHOOK_KEY".into()),
                    duration: Duration::ZERO,
                });
            }
        };
        let body = serde_json::to_vec(&event).map_err(Error::internal)?;
        let id = event.id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = key.sign(&id, timestamp, &body);
        let headers = [
            (ID_HEADER, id),
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (SIGNATURE_HEADER, signature),
        ];
        Ok(self.outbound.post(&claimed.url, &headers, body).await)
    }

    /// Records the attempt and what comes next; after a success with `go_on`, leases the
    /// endpoint's next due delivery and returns it.
    async fn record(
        &self,
        claimed: Claimed,
        outcome: Outcome,
        go_on: bool,
    ) -> Result<Option<Claimed>> {
        let settings = self.settings.clone();
        let duration = self.attempt_lease();
        let random = random_u64();
        transaction(&self.pool, |tx| {
            let (claimed, outcome, settings) = (claimed.clone(), outcome.clone(), settings.clone());
            Box::pin(async move {
                record_in(
                    tx,
                    &claimed,
                    &outcome,
                    &settings,
                    random,
                    go_on.then_some(duration),
                )
                .await
            })
        })
        .await
    }
}

async fn record_in(
    tx: &mut Tx<'static>,
    claimed: &Claimed,
    outcome: &Outcome,
    settings: &Settings,
    random: u64,
    go_on: Option<Duration>,
) -> Result<Option<Claimed>> {
    let Some(ep) = sqlx::query!(
        r#"SELECT enabled AS "enabled: bool", url, secret_sealed,
                  failing_since AS "failing_since: DateTime<Utc>",
                  COALESCE(failing_since <= UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND, FALSE)
                      AS "overdue!: bool"
           FROM webhook_endpoints WHERE id = ? FOR UPDATE"#,
        settings.disable_after.as_micros() as u64,
        claimed.endpoint
    )
    .fetch_optional(&mut **tx)
    .await?
    else {
        // Deleted meanwhile, with its deliveries.
        return Ok(None);
    };
    let Some(d) = sqlx::query!(
        r#"SELECT lease, attempts, manual AS "manual: bool"
           FROM webhook_deliveries WHERE id = ? FOR UPDATE"#,
        claimed.delivery
    )
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let error = outcome
        .error
        .as_ref()
        .map(|e| e.chars().take(500).collect::<String>());
    sqlx::query!(
        "INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms)
         VALUES (?, UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND, ?, ?, ?)",
        claimed.delivery,
        outcome.duration.as_micros() as u64,
        outcome.status,
        error,
        outcome.duration.as_millis().min(u128::from(u32::MAX)) as u32
    )
    .execute(&mut **tx)
    .await?;
    if d.lease != Some(claimed.lease) {
        // The lease ran out and someone else holds the delivery now: the attempt happened
        // and is on record; what comes next is theirs to decide.
        return Ok(None);
    }
    if outcome.succeeded() {
        sqlx::query!(
            "UPDATE webhook_deliveries
             SET status = 'succeeded', next_attempt_at = NULL, manual = FALSE, lease = NULL,
                 leased_until = NULL, updated_at = UTC_TIMESTAMP(6)
             WHERE id = ?",
            claimed.delivery
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query!(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?",
            claimed.endpoint
        )
        .execute(&mut **tx)
        .await?;
        let Some(duration) = go_on else {
            return Ok(None);
        };
        let lease = random_u64();
        let Some(next) = lease_next(tx, claimed.endpoint, lease, duration).await? else {
            return Ok(None);
        };
        let event_seq = sqlx::query_scalar!(
            "SELECT event_seq FROM webhook_deliveries WHERE id = ?",
            next
        )
        .fetch_one(&mut **tx)
        .await?;
        return Ok(Some(Claimed {
            delivery: next,
            lease,
            endpoint: claimed.endpoint,
            url: ep.url,
            secret_sealed: ep.secret_sealed,
            event_seq,
        }));
    }
    let attempts = if d.manual { d.attempts } else { d.attempts + 1 };
    sqlx::query!(
        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, UTC_TIMESTAMP(6))
         WHERE id = ?",
        claimed.endpoint
    )
    .execute(&mut **tx)
    .await?;
    let overdue = ep.overdue;
    if let (true, true, Some(since)) = (ep.enabled, overdue, ep.failing_since) {
        let reason = format!(
            "Disabled automatically: no delivery has succeeded since {}.",
            since.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        disable_in(tx, claimed.endpoint, &reason).await?;
    }
    let retry = (ep.enabled && !overdue)
        .then(|| settings.retry_after(attempts, random))
        .flatten();
    match retry {
        Some(retry) => {
            sqlx::query!(
                "UPDATE webhook_deliveries
                 SET status = 'pending', attempts = ?, manual = FALSE, lease = NULL,
                     leased_until = NULL, updated_at = UTC_TIMESTAMP(6),
                     next_attempt_at = GREATEST(UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
                                                created_at + INTERVAL ? MICROSECOND)
                 WHERE id = ?",
                attempts,
                retry.delay.as_micros() as u64,
                retry.floor.as_micros() as u64,
                claimed.delivery
            )
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query!(
                "UPDATE webhook_deliveries
                 SET status = 'failed', attempts = ?, next_attempt_at = NULL, manual = FALSE,
                     lease = NULL, leased_until = NULL, updated_at = UTC_TIMESTAMP(6)
                 WHERE id = ?",
                attempts,
                claimed.delivery
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(None)
}
