//! Wakes the webhook relay when a request has written events, so that a webhook leaves
//! within seconds of its change instead of at the relay's next scheduled minute.
//!
//! Why the writer, not a poll: a relay polling the outbox every second would query the
//! database all the time, and an Aurora Serverless cluster that is queried never pauses.
//! The writer knows when there is something to send; one SQS message to the relay's
//! wake-up queue (`RELAY_WAKE_QUEUE_URL`) starts a relay run through its event source
//! mapping, which Lambda polls without touching the database. Unset (locally), nothing is
//! sent: the local worker runs every second.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use platform::queue::{Queue, SqsQueue};

static WAKE: OnceLock<SqsQueue> = OnceLock::new();

/// The wake-up queue named by `RELAY_WAKE_QUEUE_URL`, if any, once per cold start.
pub async fn init_from_env() {
    if let Ok(url) = std::env::var("RELAY_WAKE_QUEUE_URL") {
        install(SqsQueue::from_env(url).await);
    }
}

/// Makes `queue` the process's wake-up queue; later calls keep the first.
pub fn install(queue: SqsQueue) {
    let _ = WAKE.set(queue);
}

/// After the response is ready (its transaction committed), one message if the request
/// wrote events. A failed send is logged, never the request's failure: the relay's
/// schedule sends the events within the minute anyway.
pub async fn wake_relay(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if domain::events::take_written()
        && let Some(queue) = WAKE.get()
        && let Err(err) = queue.send(vec!["{}".to_string()]).await
    {
        tracing::warn!(error = %err, "waking the webhook relay failed");
    }
    response
}
