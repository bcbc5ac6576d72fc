//! Leases: who may attempt a delivery now. The database holds them (`lease`,
//! `leased_until`); a queue message carries the lease it was sent under (a [`Ticket`]).
//! Everyone who leases for an endpoint first locks the endpoint's row, so they take turns,
//! and an endpoint has at most one delivery in flight.

use std::time::Duration;

use platform::db::Tx;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A queue message: "attempt delivery `delivery`, which the relay leased as `lease`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub delivery: u64,
    pub lease: u64,
}

impl Ticket {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a ticket always serialises")
    }

    pub fn decode(text: &str) -> Option<Ticket> {
        serde_json::from_str(text).ok()
    }
}

/// In the caller's transaction: leases the endpoint's oldest due delivery for `duration`,
/// unless one of its deliveries is in flight. The endpoint row's lock makes everyone who
/// leases for an endpoint take turns. The transaction must not have made a plain
/// (non-locking) read before: its snapshot is then taken after the lock, and sees every
/// lease committed before.
pub(crate) async fn lease_next(
    tx: &mut Tx<'static>,
    endpoint: u64,
    lease: u64,
    duration: Duration,
) -> Result<Option<u64>> {
    let Some(enabled) = sqlx::query_scalar!(
        r#"SELECT enabled AS "enabled: bool" FROM webhook_endpoints WHERE id = ? FOR UPDATE"#,
        endpoint
    )
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let in_flight = sqlx::query_scalar!(
        "SELECT COUNT(*) FROM webhook_deliveries
         WHERE endpoint_id = ? AND status = 'pending' AND leased_until > UTC_TIMESTAMP(6)",
        endpoint
    )
    .fetch_one(&mut **tx)
    .await?;
    if in_flight > 0 {
        return Ok(None);
    }
    // A disabled endpoint gets only the retries an admin asked for.
    let next = sqlx::query_scalar!(
        "SELECT id FROM webhook_deliveries
         WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at <= UTC_TIMESTAMP(6)
           AND (? OR manual = TRUE)
         ORDER BY id LIMIT 1",
        endpoint,
        enabled
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = next else {
        return Ok(None);
    };
    set_lease(tx, id, lease, duration).await?;
    Ok(Some(id))
}

/// A delivery this worker holds the lease of.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub delivery: u64,
    pub lease: u64,
    pub endpoint: u64,
    pub url: String,
    pub secret_sealed: String,
    pub event_seq: u64,
}

/// Claims `ticket`'s delivery if it is still pending and due, the ticket's lease is the
/// current one (or has run out), and no other delivery of the endpoint is in flight or
/// due before it.
pub(crate) async fn claim_in(
    tx: &mut Tx<'static>,
    endpoint: u64,
    ticket: Ticket,
    duration: Duration,
) -> Result<Option<Claimed>> {
    // The endpoint's lock first: everyone who leases for an endpoint takes turns.
    let Some(ep) = sqlx::query!(
        r#"SELECT enabled AS "enabled: bool", url, secret_sealed
           FROM webhook_endpoints WHERE id = ? FOR UPDATE"#,
        endpoint
    )
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let Some(d) = sqlx::query!(
        r#"SELECT status, event_seq, manual AS "manual: bool", lease,
                  COALESCE(next_attempt_at <= UTC_TIMESTAMP(6), FALSE) AS "due!: bool",
                  COALESCE(leased_until > UTC_TIMESTAMP(6), FALSE) AS "leased!: bool"
           FROM webhook_deliveries WHERE id = ? FOR UPDATE"#,
        ticket.delivery
    )
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let held_by_other = d.leased && d.lease != Some(ticket.lease);
    if d.status != "pending" || !d.due || held_by_other || !(ep.enabled || d.manual) {
        return Ok(None);
    }
    let ahead = sqlx::query_scalar!(
        "SELECT COUNT(*) FROM webhook_deliveries
         WHERE endpoint_id = ? AND status = 'pending' AND id <> ?
           AND (leased_until > UTC_TIMESTAMP(6)
                OR (id < ? AND next_attempt_at <= UTC_TIMESTAMP(6) AND (? OR manual = TRUE)))",
        endpoint,
        ticket.delivery,
        ticket.delivery,
        ep.enabled
    )
    .fetch_one(&mut **tx)
    .await?;
    if ahead > 0 {
        return Ok(None);
    }
    let lease = platform::crypto::random_u64();
    set_lease(tx, ticket.delivery, lease, duration).await?;
    Ok(Some(Claimed {
        delivery: ticket.delivery,
        lease,
        endpoint,
        url: ep.url,
        secret_sealed: ep.secret_sealed,
        event_seq: d.event_seq,
    }))
}

/// Leases `delivery` as `lease` for `duration`.
pub(crate) async fn set_lease(
    tx: &mut Tx<'static>,
    delivery: u64,
    lease: u64,
    duration: Duration,
) -> Result<()> {
    sqlx::query!(
        "UPDATE webhook_deliveries
         SET lease = ?, leased_until = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
         WHERE id = ?",
        lease,
        duration.as_micros() as u64,
        delivery
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
