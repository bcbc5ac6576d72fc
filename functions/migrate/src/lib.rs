//! The `migrate` function: applies the embedded schema migrations when CloudFormation
//! creates or updates the stack, and creates admins when an operator invokes it directly.
//!
//! It answers three kinds of events:
//! - a CloudFormation custom resource request (`RequestType` Create, Update or Delete).
//!   The outcome is always PUT to the request's `ResponseURL`: without it CloudFormation
//!   waits until the resource's `ServiceTimeout` before it gives up;
//! - `{"create_admin": {"email", "password", "name"}}`, which creates or promotes an admin
//!   and returns `{"admin_id": N}`;
//! - `{"migrate": {}}`, which applies the migrations outside a deploy (after repairing a
//!   failed one by hand, for instance) and returns the schema version.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::Client;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use sqlx::migrate::MigrateError;
use tokio::sync::OnceCell;

pub use lambda_runtime::Error;

/// The custom resource property holding the ARN of the migrate function's published
/// version; the template sets it so that new code (and so new migrations) means an Update.
pub const VERSION_PROPERTY: &str = "MigrateFunctionVersion";

/// CloudFormation rejects responses over 4 KiB; the reason is the only unbounded part.
const MAX_REASON_CHARS: usize = 1000;
const RESPONSE_ATTEMPTS: u32 = 3;
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Where the database comes from. A Delete never asks, so it succeeds even when the
/// configuration or the database is gone, which is what lets a broken stack be deleted.
pub trait Connect {
    fn pool(&self) -> impl Future<Output = Result<MySqlPool, String>> + Send;
}

impl Connect for MySqlPool {
    async fn pool(&self) -> Result<MySqlPool, String> {
        Ok(self.clone())
    }
}

/// The pool described by the environment (`Config::load`), built on first use and kept
/// for the life of the instance. A configuration error is not kept: the next invocation
/// tries again.
#[derive(Default)]
pub struct ConfiguredPool(OnceCell<MySqlPool>);

impl Connect for ConfiguredPool {
    async fn pool(&self) -> Result<MySqlPool, String> {
        self.0
            .get_or_try_init(|| async {
                let config = shared::config::Config::load()
                    .await
                    .map_err(|e| format!("configuration: {e}"))?;
                Ok(shared::db::pool(&config.database))
            })
            .await
            .cloned()
    }
}

/// The client that delivers responses to CloudFormation's pre-signed S3 URLs.
pub fn http_client() -> Result<Client, Error> {
    Ok(Client::builder().timeout(Duration::from_secs(10)).build()?)
}

/// Handles one invocation. `budget` is how long the migrations may take, waiting for the
/// database included; the caller keeps enough of the invocation's time back to deliver
/// the response.
pub async fn handle(
    event: Value,
    database: &impl Connect,
    http: &Client,
    budget: Duration,
) -> Result<Value, Error> {
    match Invocation::parse(event)? {
        Invocation::CustomResource(request) => {
            let response = custom_resource(&request, database, budget).await;
            match response.status {
                Status::Success => {
                    tracing::info!(reason = %response.reason, "custom resource done")
                }
                Status::Failed => {
                    tracing::error!(reason = %response.reason, "custom resource failed")
                }
            }
            send_response(http, &request.response_url, &response).await?;
            Ok(serde_json::to_value(&response)?)
        }
        Invocation::CreateAdmin(admin) => {
            let pool = database.pool().await?;
            let id = create_admin(&pool, admin).await?;
            Ok(json!({ "admin_id": id }))
        }
        Invocation::Migrate => {
            let pool = database.pool().await?;
            let version = apply_migrations(&pool, budget).await?;
            Ok(json!({ "schema_version": version }))
        }
    }
}

enum Invocation {
    CustomResource(CustomResourceRequest),
    CreateAdmin(AdminRequest),
    Migrate,
}

impl Invocation {
    fn parse(event: Value) -> Result<Self, Error> {
        let Value::Object(mut fields) = event else {
            return Err(UNRECOGNISED.into());
        };
        if fields.contains_key("RequestType") {
            let request = serde_json::from_value(Value::Object(fields))
                .map_err(|e| format!("not a CloudFormation custom resource request: {e}"))?;
            Ok(Self::CustomResource(request))
        } else if let Some(admin) = fields.remove("create_admin") {
            // serde's messages can quote the offending value, and that may be the password.
            let admin = serde_json::from_value(admin).map_err(|_| {
                r#"create_admin expects {"email": "...", "password": "...", "name": "..."} (name optional)"#
            })?;
            Ok(Self::CreateAdmin(admin))
        } else if fields.contains_key("migrate") {
            Ok(Self::Migrate)
        } else {
            Err(UNRECOGNISED.into())
        }
    }
}

const UNRECOGNISED: &str = r#"unrecognised event: expected a CloudFormation custom resource request, {"create_admin": {...}} or {"migrate": {}}"#;

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

async fn custom_resource(
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
        RequestType::Create | RequestType::Update => match database.pool().await {
            Ok(pool) => apply_migrations(&pool, budget)
                .await
                .map(|version| format!("Migrations applied; schema version {version}.")),
            Err(reason) => Err(reason),
        },
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

/// The newest migration this build carries.
pub fn schema_version() -> i64 {
    shared::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Applies the migrations, waiting for the database while it is unreachable (an Aurora
/// cluster resuming from auto-pause takes about 15 s) but not past `budget`.
pub async fn apply_migrations(pool: &MySqlPool, budget: Duration) -> Result<i64, String> {
    let deadline = Instant::now() + budget;
    let mut pause = Duration::from_millis(500);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let error = match tokio::time::timeout(remaining, shared::MIGRATOR.run(pool)).await {
            Ok(Ok(())) => return Ok(schema_version()),
            Ok(Err(error)) => error,
            Err(_) => {
                return Err(format!(
                    "the migrations did not finish within {} s",
                    budget.as_secs()
                ));
            }
        };
        let unreachable =
            matches!(&error, MigrateError::Execute(e) if shared::db::is_unavailable(e));
        if !unreachable || Instant::now() + pause >= deadline {
            return Err(format!("applying the migrations: {error}"));
        }
        tracing::warn!(%error, "database not reachable yet; trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// No `Debug`: the password must not reach a log by accident.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminRequest {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_admin(pool: &MySqlPool, admin: AdminRequest) -> Result<u64, Error> {
    let name = admin
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or("Admin");
    let email = admin.email.trim();
    let problems: Vec<&str> = [
        (
            !plausible_email(email),
            "email must look like name@example.com",
        ),
        (
            !(8..=128).contains(&admin.password.chars().count()),
            "password must be 8 to 128 characters long",
        ),
        (
            name.chars().count() > 100,
            "name must be at most 100 characters long",
        ),
    ]
    .into_iter()
    .filter_map(|(broken, message)| broken.then_some(message))
    .collect();
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }
    let id = shared::users::upsert_admin(pool, name, email, &admin.password)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(admin_id = id, "admin created or promoted");
    Ok(id)
}

/// Catches the typos that would lock the operator out (no `@`, no domain, a stray space);
/// not a full RFC 5322 check.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// PUTs the response with an empty Content-Type: the URL is pre-signed for exactly that.
async fn send_response(
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

    #[test]
    fn emails() {
        assert!(plausible_email("admin@shop.example"));
        assert!(!plausible_email("admin"));
        assert!(!plausible_email("@shop.example"));
        assert!(!plausible_email("admin@localhost"));
        assert!(!plausible_email("ad min@shop.example"));
        assert!(!plausible_email("a@b@shop.example"));
    }
}
