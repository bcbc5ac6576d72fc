//! `Idempotency-Key` over HTTP: the header, and the one way the API creates under it.
//!
//! The record itself (claim, store, replay) is [`domain::idempotency`]: plain status and
//! bytes. This module runs a function's [`Job`] around it and turns records into
//! responses. Domain refusals (404, 409, ...) are stored too: the work runs behind a
//! savepoint that is rolled back, and the refusal is recorded in its place. Invalid input
//! (400) and server-side failures are not stored, so the client may fix or retry them under
//! the same key. The answer is stored before the job's [`Job::finish`] (taking an order's
//! stock), so nothing but the commit follows the locks that step takes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::idempotency::{self, Fingerprint, Parties, Record};
use platform::db;
/// The transaction a [`Job`] writes in.
pub use platform::db::Tx;
use serde::Serialize;
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

/// What a job created, and where it now lives (the `Location` of the `201`).
pub struct Created<T> {
    pub resource: T,
    pub location: String,
}

/// A create in two phases, handed to [`create_once`] by the function that owns the
/// resource. It may run more than once (a deadlock retries the whole transaction), so it
/// holds its input by value and is cloned for each attempt.
pub trait Job: Clone + Send + Sync + 'static {
    type Resource: Serialize + Send + Sync;

    /// Writes the resource.
    fn write<'t>(
        &'t self,
        tx: &'t mut Tx<'static>,
    ) -> impl Future<Output = ApiResult<Created<Self::Resource>>> + Send + 't;

    /// Work that must come last in the transaction, after the answer is rendered and
    /// stored: taking the locks everyone else queues on, so they are held for as little as
    /// possible. A refusal here undoes the write like any other refusal.
    fn finish<'t>(
        &'t self,
        _resource: &'t Self::Resource,
        _tx: &'t mut Tx<'static>,
    ) -> impl Future<Output = ApiResult<()>> + Send + 't {
        async { Ok(()) }
    }
}

/// The one way the API creates under an `Idempotency-Key`: `job` runs in a transaction at
/// most once per (caller, key), and its resource is answered `201` with `Location`. A retry
/// with the same key and request gets the stored answer; another request under the same
/// key is 409. Without a key, the job simply runs (retried on deadlock like any other
/// transaction).
pub async fn create_once<J: Job>(
    pool: &MySqlPool,
    parties: Parties,
    key: IdempotencyKey,
    route: &'static str,
    request: &impl Serialize,
    job: J,
) -> ApiResult<Response> {
    let Some(key) = key.0 else {
        let record = db::transaction(pool, |tx| {
            let job = job.clone();
            Box::pin(async move {
                let created = job.write(tx).await?;
                job.finish(&created.resource, tx).await?;
                created_record(&created)
            })
        })
        .await?;
        return Ok(respond(record));
    };
    let fingerprint = Fingerprint::of(route, request)?;
    let record = db::transaction(pool, |tx| {
        let (key, fingerprint, job) = (key.clone(), fingerprint.clone(), job.clone());
        Box::pin(async move {
            if let Some(stored) = idempotency::claim(tx, parties, &key, &fingerprint).await? {
                return Ok(stored);
            }
            sqlx::query("SAVEPOINT idempotent_work")
                .execute(&mut **tx)
                .await?;
            let done = match job.write(tx).await {
                Ok(created) => {
                    let record = created_record(&created)?;
                    idempotency::store(tx, parties.caller, &key, &record).await?;
                    job.finish(&created.resource, tx).await.map(|()| record)
                }
                Err(err) => Err(err),
            };
            match done {
                Ok(record) => Ok(record),
                Err(err) if is_stored(&err) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT idempotent_work")
                        .execute(&mut **tx)
                        .await?;
                    let refusal = refusal_record(err.into_response()).await?;
                    idempotency::store(tx, parties.caller, &key, &refusal).await?;
                    Ok(refusal)
                }
                Err(err) => Err(err),
            }
        })
    })
    .await?;
    Ok(respond(record))
}

fn created_record<T: Serialize>(created: &Created<T>) -> ApiResult<Record> {
    Ok(Record {
        status: StatusCode::CREATED.as_u16(),
        location: Some(created.location.clone()),
        body: serde_json::to_string(&created.resource).map_err(ApiError::internal)?,
    })
}

/// Whether a refusal is a final answer worth replaying (a 404 or a 409), as opposed to
/// input the client will fix (400) or a failure worth retrying (5xx).
fn is_stored(err: &ApiError) -> bool {
    let status = err.status();
    status.is_client_error()
        && status != StatusCode::BAD_REQUEST
        && status != StatusCode::TOO_MANY_REQUESTS
}

async fn refusal_record(response: Response) -> ApiResult<Record> {
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(ApiError::internal)?;
    Ok(Record {
        status,
        location: None,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// A stored record as the response it was, byte for byte.
fn respond(record: Record) -> Response {
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_JSON
    };
    let mut response = (status, record.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(location) = record.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}
