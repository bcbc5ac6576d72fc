//! `Idempotency-Key`: a retried POST returns the first response instead of acting twice.
//!
//! The key row is inserted in the same transaction as the resource it guards. A duplicate
//! arriving while the first request runs blocks on that row's primary key; once the first
//! commits it finds the stored response and replays it, and if the first rolled back it
//! simply goes ahead itself. Domain refusals (404, 409, ...) are stored too: the work runs
//! behind a savepoint that is rolled back, and the refusal is recorded in its place.
//! Invalid input (400) and server-side failures are not stored, so the client may fix or
//! retry them under the same key. The response is stored before the resource's
//! [`Resource::last_step`] (taking an order's stock), so nothing but the commit follows
//! the locks that step takes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::error::Error;
use domain::housekeeping::IDEMPOTENCY_TTL_HOURS;
use domain::stock;
use platform::db::{self, Tx, TxFuture};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::MySqlPool;

use crate::error::{ApiError, ApiResult, PROBLEM_JSON};

pub const HEADER: &str = "idempotency-key";

/// The optional `Idempotency-Key` header (1..255 characters).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(Self(None));
        };
        let key = value
            .to_str()
            .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 characters long",
            ));
        }
        Ok(Self(Some(key.to_string())))
    }
}

/// What an idempotent POST creates: a resource that knows its own address, for the
/// `Location` header of the `201`.
pub trait Resource: Serialize + Send + Sync {
    fn location(&self) -> String;

    /// Work that must come last in the transaction, after the response is rendered and
    /// stored: taking the locks everyone else queues on, so they are held for as little
    /// as possible. A refusal here undoes the creation like any other refusal.
    fn last_step<'t>(
        &'t self,
        _tx: &'t mut Tx<'static>,
    ) -> impl Future<Output = ApiResult<()>> + Send + 't {
        async { Ok(()) }
    }
}

impl Resource for domain::orders::Placed {
    fn location(&self) -> String {
        format!("/orders/{}", self.order().id)
    }

    async fn last_step(&self, tx: &mut Tx<'static>) -> ApiResult<()> {
        Ok(self.take_stock(tx).await?)
    }
}

impl Resource for domain::payments::Payment {
    fn location(&self) -> String {
        format!("/payments/{}", self.id)
    }
}

/// A response rendered once and replayable byte for byte.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl StoredResponse {
    fn created<T: Resource>(resource: &T) -> ApiResult<Self> {
        Ok(Self {
            status: StatusCode::CREATED,
            location: Some(resource.location()),
            body: serde_json::to_string(resource).map_err(ApiError::internal)?,
        })
    }
}

impl IntoResponse for StoredResponse {
    fn into_response(self) -> Response {
        let content_type = if self.status.is_success() {
            "application/json"
        } else {
            PROBLEM_JSON
        };
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

/// Whether a refusal is a final answer worth replaying (a 404 or a 409), as opposed to
/// input the client will fix (400) or a failure worth retrying (5xx).
fn is_stored(err: &ApiError) -> bool {
    let status = err.status();
    status.is_client_error()
        && status != StatusCode::BAD_REQUEST
        && status != StatusCode::TOO_MANY_REQUESTS
}

/// Who an idempotent request is by and for: the caller (whose key it is) and, when the
/// work creates something for a user who is counted under their row (a new order's owner),
/// that user. See `domain::stock::lock_parties`.
#[derive(Debug, Clone, Copy)]
pub struct Parties {
    pub caller: u64,
    pub owner: Option<u64>,
}

/// The one way the API creates under an `Idempotency-Key`: `create` runs in a transaction
/// at most once per (caller, key), and its resource is answered `201` with `Location`. A
/// retry with the same key and request gets the stored response; another request under the
/// same key is 409. Without a key, `create` simply runs (retried on deadlock like any other
/// transaction).
pub async fn create_once<T, F>(
    pool: &MySqlPool,
    parties: Parties,
    key: IdempotencyKey,
    route: &'static str,
    request: &impl Serialize,
    create: F,
) -> ApiResult<Response>
where
    T: Resource,
    F: for<'t> Fn(&'t mut Tx<'static>) -> TxFuture<'t, T, ApiError> + Clone + Send + Sync + 'static,
{
    run_once(pool, parties, key, route, request, create)
        .await
        .map(IntoResponse::into_response)
}

async fn run_once<T, F>(
    pool: &MySqlPool,
    parties: Parties,
    key: IdempotencyKey,
    route: &'static str,
    request: &impl Serialize,
    work: F,
) -> ApiResult<StoredResponse>
where
    T: Resource,
    F: for<'t> Fn(&'t mut Tx<'static>) -> TxFuture<'t, T, ApiError> + Clone + Send + Sync + 'static,
{
    let Some(key) = key.0 else {
        let created = db::transaction(pool, |tx| {
            let work = work.clone();
            Box::pin(async move {
                let created = work(tx).await?;
                created.last_step(tx).await?;
                Ok::<_, ApiError>(created)
            })
        })
        .await?;
        return StoredResponse::created(&created);
    };
    let hash = request_hash(route, request)?;
    let user_id = parties.caller;
    db::transaction(pool, |tx| {
        let (key, hash, work) = (key.clone(), hash.clone(), work.clone());
        Box::pin(async move {
            // The users first (level 1 of the lock order), in the modes the work needs: the
            // key's insert would otherwise take the caller's row shared, and the work could
            // then have to upgrade it. A caller deleted since the token was checked is a 401,
            // not a key pointing at no one.
            if !stock::lock_parties(tx, parties.caller, parties.owner).await? {
                return Err(Error::AccountGone.into());
            }
            if let Some(stored) = claim(tx, user_id, &key, route, &hash).await? {
                return Ok(stored);
            }
            sqlx::query("SAVEPOINT idempotent_work")
                .execute(&mut **tx)
                .await?;
            let done = match work(tx).await {
                Ok(created) => {
                    let response = StoredResponse::created(&created)?;
                    store(tx, user_id, &key, &response).await?;
                    created.last_step(tx).await.map(|()| response)
                }
                Err(err) => Err(err),
            };
            match done {
                Ok(response) => Ok(response),
                Err(err) if is_stored(&err) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT idempotent_work")
                        .execute(&mut **tx)
                        .await?;
                    let refusal = stored_from_response(err.into_response()).await?;
                    store(tx, user_id, &key, &refusal).await?;
                    Ok(refusal)
                }
                Err(err) => Err(err),
            }
        })
    })
    .await
}

/// Records the answer under the claimed key.
async fn store(
    tx: &mut Tx<'static>,
    user_id: u64,
    key: &str,
    response: &StoredResponse,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = ?, response_location = ?, response_body = ?
         WHERE user_id = ? AND idempotency_key = ?",
    )
    .bind(response.status.as_u16())
    .bind(&response.location)
    .bind(&response.body)
    .bind(user_id)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the key, or returns the response stored under it by an earlier request. A key
/// older than the retention period is claimed afresh.
///
/// The insert locks the key's own row, whether it creates it or finds it (on a duplicate,
/// `ON DUPLICATE KEY UPDATE` takes the existing row exclusively), and the row is then read
/// by its primary key: nothing on this path looks for a row that may not exist, which
/// would lock the gap around it and make neighbouring users' first keys wait on each other
/// (see `domain::stock`). A duplicate arriving while the first request runs waits on the
/// row; once the first commits it reads the stored response, and if the first rolled back
/// its insert goes ahead instead.
async fn claim(
    tx: &mut Tx<'static>,
    user_id: u64,
    key: &str,
    route: &str,
    hash: &str,
) -> ApiResult<Option<StoredResponse>> {
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, route, request_hash, response_status, response_body)
         VALUES (?, ?, ?, ?, 0, '')
         ON DUPLICATE KEY UPDATE user_id = user_id",
    )
    .bind(user_id)
    .bind(key)
    .bind(route)
    .bind(hash)
    .execute(&mut **tx)
    .await?;
    let (stored_route, stored_hash, status, location, body, expired): (
        String,
        String,
        u16,
        Option<String>,
        String,
        bool,
    ) = sqlx::query_as(
        "SELECT route, request_hash, response_status, response_location, response_body,
                created_at < UTC_TIMESTAMP(6) - INTERVAL ? HOUR
         FROM idempotency_keys WHERE user_id = ? AND idempotency_key = ? FOR UPDATE",
    )
    .bind(IDEMPOTENCY_TTL_HOURS)
    .bind(user_id)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    // Every committed key carries a response; a status of 0 is the row just inserted.
    if status == 0 {
        return Ok(None);
    }
    if expired {
        sqlx::query(
            "UPDATE idempotency_keys SET route = ?, request_hash = ?, response_status = 0,
                 response_location = NULL, response_body = '', created_at = UTC_TIMESTAMP(6)
             WHERE user_id = ? AND idempotency_key = ?",
        )
        .bind(route)
        .bind(hash)
        .bind(user_id)
        .bind(key)
        .execute(&mut **tx)
        .await?;
        return Ok(None);
    }
    if stored_route != route || stored_hash != hash {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let status = StatusCode::from_u16(status).map_err(ApiError::internal)?;
    Ok(Some(StoredResponse {
        status,
        location,
        body,
    }))
}

async fn stored_from_response(response: Response) -> ApiResult<StoredResponse> {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(ApiError::internal)?;
    Ok(StoredResponse {
        status,
        location: None,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// SHA-256 of the route and the request as parsed, so that formatting and key order do
/// not matter but any change of meaning does.
fn request_hash(route: &str, request: &impl Serialize) -> ApiResult<String> {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(request).map_err(ApiError::internal)?);
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
