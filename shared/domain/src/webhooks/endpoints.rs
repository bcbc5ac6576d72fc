//! Webhook endpoints: where events are sent, which ones, and the key they are signed with.
//!
//! The signing key is generated from the system's CSPRNG and shown once, at creation, as
//! `whsec_` + base64(key). The database holds it sealed (AES-256-GCM) under a key from
//! the environment or Secrets Manager, bound to the endpoint's id, so a copy of the
//! database alone cannot sign, and a sealed key copied to another endpoint does not open.

use chrono::{DateTime, Utc};
use platform::crypto::SealingKey;
use platform::db::Tx;
use platform::outbound::Outbound;
use platform::webhook_signature::SigningKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::MySqlPool;

use crate::error::{Error, FieldError, Result};
use crate::events::EventType;
use crate::page::{Cursor, Limit, Page, into_page};
use crate::time::timestamp;
use crate::validate::{Checks, Validate};

/// An entry of an endpoint's `events`: one type, or `"*"` for every type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subscription {
    All,
    Only(EventType),
}

impl Subscription {
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::All => "*",
            Subscription::Only(kind) => kind.as_str(),
        }
    }
}

impl Serialize for Subscription {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Subscription {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "*" => Ok(Subscription::All),
            other => EventType::parse(other)
                .map(Subscription::Only)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub id: u64,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    /// False once disabled, by an admin or after three days of failures
    /// (`disabled_reason`).
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// The answer to a creation: the endpoint and, this once, its secret.
#[derive(Debug, Serialize)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<Subscription>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PUT`: the whole endpoint again; `enabled` may be left out to keep it as it is, and
/// `true` enables an endpoint that was disabled (its failures forgotten).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdate {
    pub url: String,
    pub events: Vec<Subscription>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Longest accepted URL, and most entries in `events` (every type, or `*`, is fewer).
pub const MAX_URL_CHARS: usize = 2000;

fn check_fields(
    checks: &mut Checks,
    url: &str,
    events: &[Subscription],
    description: Option<&str>,
) {
    checks
        .text("url", url, 1, MAX_URL_CHARS)
        .check(
            !events.is_empty(),
            "events",
            "must name at least one event type or \"*\"",
        )
        .check(
            events.len() <= EventType::ALL.len(),
            "events",
            "has more entries than there are event types",
        )
        .optional_text("description", description, 500);
}

impl Validate for NewEndpoint {
    fn validate(&self) -> std::result::Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        check_fields(
            &mut checks,
            &self.url,
            &self.events,
            self.description.as_deref(),
        );
        checks.finish()
    }
}

impl Validate for EndpointUpdate {
    fn validate(&self) -> std::result::Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        check_fields(
            &mut checks,
            &self.url,
            &self.events,
            self.description.as_deref(),
        );
        checks.finish()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EndpointQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for EndpointQuery {}

/// The URL as it will be called, or the invalid-input refusal naming why it may not be:
/// checked against every address its host resolves to now (and again at each delivery).
async fn checked_url(outbound: &Outbound, url: &str) -> Result<String> {
    outbound
        .check(url)
        .await
        .map(|u| u.to_string())
        .map_err(|refusal| Error::invalid("url", refusal.to_string()))
}

/// What a sealed signing key is bound to.
fn seal_context(id: u64) -> Vec<u8> {
    format!("webhook endpoint {id}").into_bytes()
}

/// The endpoint's signing key, opened; fails when the sealing key is not the one it was
/// sealed with.
pub fn signing_key(sealing: &SealingKey, id: u64, sealed: &str) -> Result<SigningKey> {
    sealing
        .open(sealed, &seal_context(id))
        .map(SigningKey::from_bytes)
        .map_err(Error::internal)
}

pub async fn create(
    pool: &MySqlPool,
    outbound: &Outbound,
    sealing: &SealingKey,
    input: NewEndpoint,
) -> Result<CreatedEndpoint> {
    let url = checked_url(outbound, &input.url).await?;
    let key = SigningKey::generate();
    let mut tx = pool.begin().await?;
    let id = sqlx::query!(
        "INSERT INTO webhook_endpoints (url, description, secret_sealed, created_at, updated_at)
         VALUES (?, ?, '', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
        url,
        input.description
    )
    .execute(&mut *tx)
    .await?
    .last_insert_id();
    let sealed = sealing.seal(key.as_bytes(), &seal_context(id));
    sqlx::query!(
        "UPDATE webhook_endpoints SET secret_sealed = ? WHERE id = ?",
        sealed,
        id
    )
    .execute(&mut *tx)
    .await?;
    subscribe(&mut tx, id, &input.events).await?;
    tx.commit().await?;
    Ok(CreatedEndpoint {
        endpoint: get(pool, id).await?,
        secret: key.secret(),
    })
}

async fn subscribe(tx: &mut Tx<'static>, id: u64, events: &[Subscription]) -> Result<()> {
    sqlx::query!(
        "DELETE FROM webhook_subscriptions WHERE endpoint_id = ?",
        id
    )
    .execute(&mut **tx)
    .await?;
    for event in events {
        sqlx::query!(
            "INSERT IGNORE INTO webhook_subscriptions (endpoint_id, event_type) VALUES (?, ?)",
            id,
            event.as_str()
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

struct Row {
    id: u64,
    url: String,
    events: Option<String>,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Endpoint {
    fn from(row: Row) -> Endpoint {
        Endpoint {
            id: row.id,
            url: row.url,
            events: row
                .events
                .map(|e| e.split(' ').map(str::to_string).collect())
                .unwrap_or_default(),
            description: row.description,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub async fn get(pool: &MySqlPool, id: u64) -> Result<Endpoint> {
    sqlx::query_as!(
        Row,
        r#"SELECT w.id, w.url, w.description, w.enabled AS "enabled: bool", w.disabled_reason,
                  (SELECT GROUP_CONCAT(s.event_type ORDER BY s.event_type SEPARATOR ' ')
                   FROM webhook_subscriptions s WHERE s.endpoint_id = w.id) AS "events: String",
                  w.created_at AS "created_at: DateTime<Utc>", w.updated_at AS "updated_at: DateTime<Utc>"
           FROM webhook_endpoints w WHERE w.id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .map(Endpoint::from)
    .ok_or(Error::NotFound("webhook endpoint"))
}

/// Every endpoint, oldest first.
pub async fn list(pool: &MySqlPool, query: &EndpointQuery) -> Result<Page<Endpoint>> {
    const SORT: &str = "id";
    let after = match &query.cursor {
        Some(text) => Cursor::decode(SORT, text)?.id,
        None => 0,
    };
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT w.id, w.url, w.description, w.enabled AS "enabled: bool", w.disabled_reason,
                  (SELECT GROUP_CONCAT(s.event_type ORDER BY s.event_type SEPARATOR ' ')
                   FROM webhook_subscriptions s WHERE s.endpoint_id = w.id) AS "events: String",
                  w.created_at AS "created_at: DateTime<Utc>", w.updated_at AS "updated_at: DateTime<Utc>"
           FROM webhook_endpoints w WHERE w.id > ? ORDER BY w.id LIMIT ?"#,
        after,
        query.limit.get() + 1
    )
    .fetch_all(pool)
    .await?;
    let endpoints = rows.into_iter().map(Endpoint::from).collect();
    Ok(into_page(endpoints, query.limit, SORT, |e: &Endpoint| {
        (String::new(), e.id)
    }))
}

pub async fn update(
    pool: &MySqlPool,
    outbound: &Outbound,
    id: u64,
    input: EndpointUpdate,
) -> Result<Endpoint> {
    let url = checked_url(outbound, &input.url).await?;
    let mut tx = pool.begin().await?;
    let found = sqlx::query!(
        "SELECT id FROM webhook_endpoints WHERE id = ? FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if found.is_none() {
        return Err(Error::NotFound("webhook endpoint"));
    }
    sqlx::query!(
        "UPDATE webhook_endpoints SET url = ?, description = ?, updated_at = UTC_TIMESTAMP(6)
         WHERE id = ?",
        url,
        input.description,
        id
    )
    .execute(&mut *tx)
    .await?;
    match input.enabled {
        Some(true) => {
            sqlx::query!(
                "UPDATE webhook_endpoints
                 SET enabled = TRUE, disabled_reason = NULL, failing_since = NULL WHERE id = ?",
                id
            )
            .execute(&mut *tx)
            .await?;
        }
        Some(false) => disable_in(&mut tx, id, "Disabled by an admin.").await?,
        None => {}
    }
    subscribe(&mut tx, id, &input.events).await?;
    tx.commit().await?;
    get(pool, id).await
}

/// Disables an endpoint (if enabled) and fails its pending deliveries: nothing more is
/// sent to it until an admin enables it again or asks for a retry.
pub(crate) async fn disable_in(tx: &mut Tx<'static>, id: u64, reason: &str) -> Result<()> {
    let changed = sqlx::query!(
        "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = ?,
                updated_at = UTC_TIMESTAMP(6)
         WHERE id = ? AND enabled = TRUE",
        reason,
        id
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed > 0 {
        sqlx::query!(
            "UPDATE webhook_deliveries
             SET status = 'failed', next_attempt_at = NULL, manual = FALSE,
                 updated_at = UTC_TIMESTAMP(6)
             WHERE endpoint_id = ? AND status = 'pending'",
            id
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Its deliveries and their attempts go with it.
pub async fn delete(pool: &MySqlPool, id: u64) -> Result<()> {
    let deleted = sqlx::query!("DELETE FROM webhook_endpoints WHERE id = ?", id)
        .execute(pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(Error::NotFound("webhook endpoint"));
    }
    Ok(())
}
