//! A loopback stand-in for CloudFormation's pre-signed response URL, and request builders.

#![allow(dead_code)] // each test file uses its own part of this module

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const STACK_ID: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-api/5b1ae8e0-c9a4-11ef-9c1a-0a1b2c3d4e5f";
pub const FUNCTION: &str =
    "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-MigrateFunction-Ab1Cd2";

/// One request the loopback server received.
#[derive(Debug)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Value,
}

pub struct ResponseEndpoint {
    pub addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
}

impl ResponseEndpoint {
    pub async fn start() -> Self {
        Self::start_failing(0).await
    }

    /// Answers the first `failures` requests with a 503, like a flaky network would.
    pub async fn start_failing(failures: u32) -> Self {
        let (sender, received) = mpsc::unbounded_channel();
        let remaining_failures = Arc::new(AtomicU32::new(failures));
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let sender = sender.clone();
                let remaining_failures = remaining_failures.clone();
                async move {
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = sender.send(Received {
                        method,
                        uri,
                        headers,
                        body,
                    });
                    let fail = remaining_failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if fail {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, received }
    }

    /// Shaped like CloudFormation's: a path and a signature in the query.
    pub fn url(&self) -> String {
        format!(
            "http://{}/arn%3Aaws%3Acloudformation/DatabaseMigrations?X-Amz-Signature=0123abcd",
            self.addr
        )
    }

    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.received.recv())
            .await
            .expect("a response within 10 s")
            .expect("the server is running")
    }

    pub fn nothing_more(&mut self) -> bool {
        self.received.try_recv().is_err()
    }
}

/// What CloudFormation sends to a custom resource's service token.
pub fn custom_resource_event(
    request_type: &str,
    response_url: &str,
    physical_resource_id: Option<&str>,
) -> Value {
    let mut event = json!({
        "RequestType": request_type,
        "ServiceToken": FUNCTION,
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": format!("{request_type}-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        "LogicalResourceId": "DatabaseMigrations",
        "ResourceType": "AWS::CloudFormation::CustomResource",
        "ResourceProperties": {
            "ServiceToken": FUNCTION,
            "MigrateFunctionVersion": format!("{FUNCTION}:2"),
            "DatabaseHost": "shop.cluster-abc.eu-west-1.rds.amazonaws.com",
        },
    });
    if let Some(id) = physical_resource_id {
        event["PhysicalResourceId"] = json!(id);
    }
    if request_type == "Update" {
        event["OldResourceProperties"] = json!({
            "ServiceToken": FUNCTION,
            "MigrateFunctionVersion": format!("{FUNCTION}:1"),
            "DatabaseHost": "shop.cluster-abc.eu-west-1.rds.amazonaws.com",
        });
    }
    event
}

pub fn http() -> reqwest::Client {
    // A proxy from the environment must not intercept loopback traffic.
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A pool to a port nothing listens on: any use of it fails.
pub async fn unreachable_pool() -> sqlx::MySqlPool {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let options = sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("nobody")
        .database("nothing");
    platform::db::pool_with(options, 1)
}

pub async fn tables(pool: &sqlx::MySqlPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables
         WHERE table_schema = DATABASE() ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}
