//! Idempotency records: a retried create finds the answer its first attempt gave, instead
//! of creating twice.
//!
//! A record is plain data (a status code, an optional location and the body's bytes): this
//! module knows nothing of what was created, so every idempotent route stores and replays
//! its answer the same way. The record is claimed in the same transaction as the work it
//! guards. A duplicate arriving while the first request runs blocks on the record's row;
//! once the first commits it finds the stored answer, and if the first rolled back it goes
//! ahead itself.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::MySqlPool;

use crate::error::{Conflict, Error, Result};
use crate::stock;
use platform::db::Tx;

/// How long a record is kept: the contract promises at least 24 hours. Until the sweep
/// deletes it, an older key starts afresh.
pub const TTL_HOURS: u32 = 24;

/// An answer as it is stored and replayed, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// Who an idempotent request is by and for: the caller (whose key it is) and, when the
/// work creates something for a user whose row counts it (a new order's owner), that
/// user. See [`stock::lock_parties`].
#[derive(Debug, Clone, Copy)]
pub struct Parties {
    pub caller: u64,
    pub owner: Option<u64>,
}

/// What a key was first used for: the route and a hash of the request as parsed, so that
/// formatting and key order do not matter but any change of meaning does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    route: &'static str,
    hash: String,
}

impl Fingerprint {
    pub fn of(route: &'static str, request: &impl Serialize) -> Result<Self> {
        let mut hasher = Sha256::new();
        hasher.update(route.as_bytes());
        hasher.update([0]);
        hasher.update(serde_json::to_vec(request).map_err(Error::internal)?);
        let hash = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self { route, hash })
    }
}

/// Locks the parties (level 1 of the lock order, in the modes the work needs: the key's
/// insert would otherwise take the caller's row shared, and the work could then have to
/// upgrade it), then inserts the key, or returns the record stored under it by an earlier
/// request. A caller deleted since the token was checked is [`Error::AccountGone`]; the
/// same key for another request is a conflict. A key older than [`TTL_HOURS`] is claimed
/// afresh.
///
/// The insert locks the key's own row, whether it creates it or finds it (on a duplicate,
/// `ON DUPLICATE KEY UPDATE` takes the existing row exclusively), and the row is then read
/// by its primary key: nothing on this path looks for a row that may not exist, which
/// would lock the gap around it and make neighbouring users' first keys wait on each other
/// (see [`crate::stock`]).
pub async fn claim(
    tx: &mut Tx<'static>,
    parties: Parties,
    key: &str,
    fingerprint: &Fingerprint,
) -> Result<Option<Record>> {
    if !stock::lock_parties(tx, parties.caller, parties.owner).await? {
        return Err(Error::AccountGone);
    }
    let user_id = parties.caller;
    sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, route, request_hash, response_status, response_body)
         VALUES (?, ?, ?, ?, 0, '')
         ON DUPLICATE KEY UPDATE user_id = user_id",
        user_id,
        key,
        fingerprint.route,
        fingerprint.hash
    )
    .execute(&mut **tx)
    .await?;
    let stored = sqlx::query!(
        r#"SELECT route, request_hash, response_status AS "status: u16", response_location,
                  response_body, created_at < UTC_TIMESTAMP(6) - INTERVAL ? HOUR AS "expired!: bool"
           FROM idempotency_keys WHERE user_id = ? AND idempotency_key = ? FOR UPDATE"#,
        TTL_HOURS,
        user_id,
        key
    )
    .fetch_one(&mut **tx)
    .await?;
    // Every committed key carries an answer; a status of 0 is the row just inserted.
    if stored.status == 0 {
        return Ok(None);
    }
    if stored.expired {
        sqlx::query!(
            "UPDATE idempotency_keys SET route = ?, request_hash = ?, response_status = 0,
                 response_location = NULL, response_body = '', created_at = UTC_TIMESTAMP(6)
             WHERE user_id = ? AND idempotency_key = ?",
            fingerprint.route,
            fingerprint.hash,
            user_id,
            key
        )
        .execute(&mut **tx)
        .await?;
        return Ok(None);
    }
    if stored.route != fingerprint.route || stored.request_hash != fingerprint.hash {
        return Err(Error::conflict(
            Conflict::IdempotencyKeyReused,
            "This Idempotency-Key was already used for a different request.",
        ));
    }
    Ok(Some(Record {
        status: stored.status,
        location: stored.response_location,
        body: stored.response_body,
    }))
}

/// Records the answer under the key [`claim`] took for `caller`.
pub async fn store(tx: &mut Tx<'static>, caller: u64, key: &str, record: &Record) -> Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response_status = ?, response_location = ?, response_body = ?
         WHERE user_id = ? AND idempotency_key = ?",
        record.status,
        record.location,
        record.body,
        caller,
        key
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes up to `batch` records past [`TTL_HOURS`], oldest first; returns how many.
pub async fn purge(pool: &MySqlPool, batch: u32) -> Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM idempotency_keys
         WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL ? HOUR
         ORDER BY created_at LIMIT ?",
        TTL_HOURS,
        batch
    )
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
