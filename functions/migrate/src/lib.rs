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

pub mod app_user;
pub mod custom_resource;
pub mod database;

use std::time::Duration;

use domain::users::{Email, Password};
use reqwest::Client;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::MySqlPool;

use custom_resource::{CustomResourceRequest, Status, custom_resource, send_response};
use database::prepare;

pub use app_user::AppUser;
pub use custom_resource::VERSION_PROPERTY;
pub use database::{ConfiguredPool, Connect, schema_version};
pub use lambda_runtime::Error;

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
            let version = prepare(database, budget).await?;
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
    // The same rules as registration: one definition of a valid email and password.
    let email = Email::parse(&admin.email);
    let password = Password::parse(admin.password);
    let problems: Vec<String> = [
        email.as_ref().err().map(|m| format!("email {m}")),
        password.as_ref().err().map(|m| format!("password {m}")),
        (name.chars().count() > 100).then(|| "name must be at most 100 characters long".into()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (Ok(email), Ok(password)) = (email, password) else {
        return Err(problems.join("; ").into());
    };
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }
    let id = domain::users::upsert_admin(pool, name, &email, password)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(admin_id = id, "admin created or promoted");
    Ok(id)
}
