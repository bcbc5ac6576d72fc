//! The `webhook-relay` function: publishes committed events, creates their deliveries and
//! sends the due ones to the delivery queue (`domain::webhooks::relay`). EventBridge runs it
//! every minute (retries fall due with no new event), and a message on its wake-up queue
//! runs it as soon as a writer has committed events.

use domain::webhooks::relay;
use domain::webhooks::schedule::Settings;
use platform::queue::Queue;
use serde_json::{Value, json};
use sqlx::MySqlPool;

pub use lambda_runtime::Error;

/// One relay run, whatever woke it; what it did, as logged and returned. A wake-up batch is
/// consumed whole: the run has covered every event its messages stood for.
pub async fn run(
    pool: &MySqlPool,
    queue: &impl Queue,
    settings: &Settings,
) -> Result<Value, Error> {
    let report = relay::step(pool, queue, settings).await?;
    tracing::info!(
        published = report.published,
        deliveries_created = report.deliveries_created,
        enqueued = report.enqueued,
        "relay done"
    );
    Ok(json!({
        "published": report.published,
        "deliveries_created": report.deliveries_created,
        "enqueued": report.enqueued,
        "batchItemFailures": [],
    }))
}
