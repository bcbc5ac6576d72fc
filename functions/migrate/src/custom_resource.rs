//! CloudFormation custom resources: the request, the response, and its delivery to the
//! pre-signed response URL.

use std::time::Duration;

use reqwest::Client;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::database::{Connect, prepare};

pub use lambda_runtime::Error;

/// The custom resource property holding the ARN of the migrate function's published
/// version; the template sets it so that new code (and so new migrations) means an Update.
pub const VERSION_PROPERTY: &str = "MigrateFunctionVersion";

/// CloudFormation rejects responses over 4 KiB; the reason is the only unbounded part.
const MAX_REASON_CHARS: usize = 1000;
const RESPONSE_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// The fields of a CloudFormation custom resource request this function uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceRequest {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Value,
    #[serde(default)]
    pub old_resource_properties: Option<Value>,
}

impl CustomResourceRequest {
    /// A rollback sends an Update back to the previous properties, so the migrate function
    /// version goes down. The schema stays as it is: migrations only go forward, and
    /// re-running them with older code would fail on the newer (or half-applied) ones and
    /// leave the stack in UPDATE_ROLLBACK_FAILED.
    pub fn is_rollback(&self) -> bool {
        let version = |properties: Option<&Value>| {
            let arn = properties?.get(VERSION_PROPERTY)?.as_str()?;
            let (function, number) = arn.rsplit_once(':')?;
            Some((function.to_string(), number.parse::<u64>().ok()?))
        };
        match (
            version(Some(&self.resource_properties)),
            version(self.old_resource_properties.as_ref()),
        ) {
            // A replaced function restarts its versions at 1; only the same function counts.
            (Some((function, new)), Some((old_function, old))) => {
                function == old_function && new < old
            }
            _ => false,
        }
    }

    /// Stable across updates: a new physical id would make CloudFormation delete the old one.
    fn physical_resource_id(&self) -> String {
        if let Some(id) = self
            .physical_resource_id
            .as_deref()
            .filter(|id| !id.is_empty())
        {
            return id.to_string();
        }
        // StackId: arn:aws:cloudformation:region:account:stack/<name>/<uuid>
        match self.stack_id.split('/').nth(1) {
            Some(stack) => format!("{stack}-{}", self.logical_resource_id),
            None => self.logical_resource_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

/// What is PUT to the `ResponseURL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceResponse {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
}

pub(crate) async fn custom_resource(
    request: &CustomResourceRequest,
    database: &impl Connect,
    budget: Duration,
) -> CustomResourceResponse {
    let outcome = match request.request_type {
        RequestType::Delete => {
            Ok("Nothing to undo: migrations are never reverted, the data stays.".to_string())
        }
        RequestType::Update if request.is_rollback() => {
            Ok("Rollback: migrations only go forward, the schema is left as it is.".to_string())
        }
        RequestType::Create | RequestType::Update => prepare(database, budget)
            .await
            .map(|version| format!("Migrations applied; schema version {version}.")),
    };
    let (status, reason) = match outcome {
        Ok(reason) => (Status::Success, reason),
        Err(reason) => (Status::Failed, failure_reason(&reason)),
    };
    CustomResourceResponse {
        status,
        reason,
        physical_resource_id: request.physical_resource_id(),
        stack_id: request.stack_id.clone(),
        request_id: request.request_id.clone(),
        logical_resource_id: request.logical_resource_id.clone(),
    }
}

/// The reason CloudFormation shows in the stack's events, pointing at the full log.
fn failure_reason(error: &str) -> String {
    let mut reason: String = error.chars().take(MAX_REASON_CHARS).collect();
    if reason.len() < error.len() {
        reason.push_str("...");
    }
    if let Ok(stream) = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME") {
        reason.push_str(&format!(" (log stream {stream})"));
    }
    reason
}

/// PUTs the response with an empty Content-Type: the URL is pre-signed for exactly that.
pub(crate) async fn send_response(
    http: &Client,
    url: &str,
    response: &CustomResourceResponse,
) -> Result<(), Error> {
    let body = serde_json::to_vec(response)?;
    let mut last_error = String::new();
    for attempt in 1..=RESPONSE_ATTEMPTS {
        match http
            .put(url)
            .header(CONTENT_TYPE, "")
            .body(body.clone())
            .send()
            .await
        {
            Ok(reply) if reply.status().is_success() => return Ok(()),
            Ok(reply) => last_error = format!("status {}", reply.status()),
            // The URL carries a signature: keep it out of the logs.
            Err(error) => last_error = error.without_url().to_string(),
        }
        tracing::warn!(attempt, error = %last_error, "could not deliver the response to CloudFormation");
        if attempt < RESPONSE_ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
    }
    // An error makes Lambda retry the asynchronous invocation, which runs everything again:
    // the migrations are idempotent, and the next attempt may get the response through.
    Err(format!("could not deliver the response to CloudFormation: {last_error}").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(new: &str, old: &str) -> CustomResourceRequest {
        serde_json::from_value(json!({
            "RequestType": "Update",
            "ResponseURL": "http://127.0.0.1:9/",
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-api/0a1b",
            "RequestId": "r",
            "LogicalResourceId": "DatabaseMigrations",
            "PhysicalResourceId": "shop-api-DatabaseMigrations",
            "ResourceProperties": { VERSION_PROPERTY: new },
            "OldResourceProperties": { VERSION_PROPERTY: old },
        }))
        .unwrap()
    }

    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-Migrate-x";

    #[test]
    fn a_lower_version_of_the_same_function_is_a_rollback() {
        assert!(update(&format!("{FUNCTION}:3"), &format!("{FUNCTION}:4")).is_rollback());
        assert!(!update(&format!("{FUNCTION}:4"), &format!("{FUNCTION}:3")).is_rollback());
        assert!(!update(&format!("{FUNCTION}:4"), &format!("{FUNCTION}:4")).is_rollback());
    }

    #[test]
    fn a_replaced_function_or_missing_versions_are_never_a_rollback() {
        assert!(!update(&format!("{FUNCTION}-new:1"), &format!("{FUNCTION}:9")).is_rollback());
        assert!(!update("", &format!("{FUNCTION}:9")).is_rollback());
        assert!(!update(&format!("{FUNCTION}:$LATEST"), &format!("{FUNCTION}:9")).is_rollback());
    }

    #[test]
    fn the_physical_id_is_stable() {
        let mut request = update("", "");
        assert_eq!(
            request.physical_resource_id(),
            "shop-api-DatabaseMigrations"
        );
        request.physical_resource_id = None;
        assert_eq!(
            request.physical_resource_id(),
            "shop-api-DatabaseMigrations"
        );
    }

    #[test]
    fn long_reasons_are_cut() {
        let reason = failure_reason(&"x".repeat(5000));
        assert!(reason.len() < 1200);
    }
}
