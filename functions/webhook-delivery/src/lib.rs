//! The `webhook-delivery` function: an SQS event source mapping hands it batches of
//! delivery messages; each is attempted (`domain::webhooks::delivery`) and only the ones
//! to try again are reported (`ReportBatchItemFailures`). A message reported too often goes
//! to the dead-letter queue, which alarms; the database still holds its delivery, which the
//! relay hands out again when its lease runs out.

use domain::webhooks::delivery::Deliverer;
use serde_json::{Value, json};

pub use lambda_runtime::Error;

/// `(messageId, body)` of each record of an SQS event.
pub fn messages(event: &Value) -> Vec<(String, String)> {
    event["Records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|record| {
            let id = record["messageId"].as_str()?;
            let body = record["body"].as_str()?;
            Some((id.to_string(), body.to_string()))
        })
        .collect()
}

/// Handles a batch; answers the partial batch failures.
pub async fn handle(deliverer: &Deliverer, event: &Value) -> Value {
    let failed = deliverer.handle_batch(messages(event)).await;
    let failures: Vec<Value> = failed
        .into_iter()
        .map(|id| json!({"itemIdentifier": id}))
        .collect();
    json!({"batchItemFailures": failures})
}
