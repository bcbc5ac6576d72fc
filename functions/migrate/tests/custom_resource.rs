//! The CloudFormation custom resource: real requests, a real (fresh, empty) database, and
//! the response read back from a loopback server standing in for the pre-signed S3 URL.

mod common;

use std::time::{Duration, Instant};

use common::{FUNCTION, ResponseEndpoint, STACK_ID, custom_resource_event, http};
use migrate::Connect;
use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::TcpProxy;

const BUDGET: Duration = Duration::from_secs(30);

fn assert_answers(received: &common::Received, event: &Value, status: &str) {
    assert_eq!(received.method, "PUT");
    assert_eq!(
        received.uri.query(),
        Some("X-Amz-Signature=0123abcd"),
        "the pre-signed URL is used as given"
    );
    // The URL is signed without a content type: anything but an empty one is rejected.
    assert_eq!(
        received.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b""[..])
    );
    let body = &received.body;
    assert_eq!(body["Status"], status, "{body}");
    assert_eq!(body["StackId"], STACK_ID);
    assert_eq!(body["RequestId"], event["RequestId"]);
    assert_eq!(body["LogicalResourceId"], "DatabaseMigrations");
    assert!(body["Reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(
        body["PhysicalResourceId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[sqlx::test(migrations = false)]
async fn create_applies_the_migrations_and_reports_success(pool: MySqlPool) {
    assert!(common::tables(&pool).await.is_empty());
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event("Create", &endpoint.url(), None);

    let sent = migrate::handle(event.clone(), &pool, &http(), BUDGET)
        .await
        .unwrap();

    let received = endpoint.next().await;
    assert_answers(&received, &event, "SUCCESS");
    assert_eq!(received.body, sent, "returns what it sent");
    assert_eq!(
        received.body["PhysicalResourceId"],
        "shop-api-DatabaseMigrations"
    );
    assert!(endpoint.nothing_more());

    let tables = common::tables(&pool).await;
    for table in [
        "_sqlx_migrations",
        "users",
        "categories",
        "products",
        "cart_items",
        "orders",
        "order_items",
        "payments",
        "reviews",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, domain::MIGRATOR.iter().count() as i64);
}

#[sqlx::test(migrations = false)]
async fn update_runs_again_harmlessly_and_keeps_the_physical_id(pool: MySqlPool) {
    let mut endpoint = ResponseEndpoint::start().await;
    let create = custom_resource_event("Create", &endpoint.url(), None);
    migrate::handle(create, &pool, &http(), BUDGET)
        .await
        .unwrap();
    let id = endpoint.next().await.body["PhysicalResourceId"].clone();

    let update = custom_resource_event("Update", &endpoint.url(), id.as_str());
    migrate::handle(update.clone(), &pool, &http(), BUDGET)
        .await
        .unwrap();

    let received = endpoint.next().await;
    assert_answers(&received, &update, "SUCCESS");
    assert_eq!(received.body["PhysicalResourceId"], id);
}

#[sqlx::test(migrations = false)]
async fn a_migration_that_fails_reports_failed_with_the_reason(pool: MySqlPool) {
    // A database that is not ours: the first migration cannot create `users`.
    sqlx::query("CREATE TABLE users (id INT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event("Create", &endpoint.url(), None);

    let sent = migrate::handle(event.clone(), &pool, &http(), BUDGET)
        .await
        .expect("a failed migration is an answer, not an invocation error");

    let received = endpoint.next().await;
    assert_answers(&received, &event, "FAILED");
    assert_eq!(sent["Status"], "FAILED");
    let reason = received.body["Reason"].as_str().unwrap();
    assert!(reason.contains("users"), "{reason}");

    // CloudFormation then deletes what it could not create, with the id it was given.
    let id = received.body["PhysicalResourceId"].clone();
    let delete = custom_resource_event("Delete", &endpoint.url(), id.as_str());
    migrate::handle(delete.clone(), &pool, &http(), BUDGET)
        .await
        .unwrap();
    let received = endpoint.next().await;
    assert_answers(&received, &delete, "SUCCESS");
    assert_eq!(received.body["PhysicalResourceId"], id);
}

#[tokio::test]
async fn an_unreachable_database_reports_failed_once_the_budget_is_spent() {
    let pool = common::unreachable_pool().await;
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event("Create", &endpoint.url(), None);
    let started = Instant::now();

    migrate::handle(event.clone(), &pool, &http(), Duration::from_secs(2))
        .await
        .unwrap();

    let received = endpoint.next().await;
    assert_answers(&received, &event, "FAILED");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "gave up after {:?}",
        started.elapsed()
    );
}

#[sqlx::test(migrations = false)]
async fn a_database_that_comes_up_late_is_waited_for(pool: MySqlPool) {
    let options = pool.connect_options();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let through_proxy = platform::db::pool_with(
        (*options).clone().host("127.0.0.1").port(proxy.addr.port()),
        2,
    );
    proxy.stop();
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event("Create", &endpoint.url(), None);

    let run = tokio::spawn({
        let event = event.clone();
        async move { migrate::handle(event, &through_proxy, &http(), BUDGET).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(endpoint.nothing_more(), "still waiting for the database");
    proxy.restart().await;
    run.await.unwrap().unwrap();

    assert_answers(&endpoint.next().await, &event, "SUCCESS");
    assert!(common::tables(&pool).await.iter().any(|t| t == "orders"));
}

#[tokio::test]
async fn delete_succeeds_without_touching_the_database() {
    // Any use of this pool would fail, so SUCCESS proves it was not used.
    let pool = common::unreachable_pool().await;
    let mut endpoint = ResponseEndpoint::start().await;
    let event = custom_resource_event(
        "Delete",
        &endpoint.url(),
        Some("shop-api-DatabaseMigrations"),
    );

    migrate::handle(event.clone(), &pool, &http(), BUDGET)
        .await
        .unwrap();

    let received = endpoint.next().await;
    assert_answers(&received, &event, "SUCCESS");
    assert_eq!(
        received.body["PhysicalResourceId"],
        "shop-api-DatabaseMigrations"
    );
}

#[sqlx::test(migrations = false)]
async fn a_rollback_leaves_the_schema_alone(pool: MySqlPool) {
    let mut endpoint = ResponseEndpoint::start().await;
    let mut event = custom_resource_event(
        "Update",
        &endpoint.url(),
        Some("shop-api-DatabaseMigrations"),
    );
    // Back from version 5 of the function to version 4.
    event["ResourceProperties"]["MigrateFunctionVersion"] = json!(format!("{FUNCTION}:4"));
    event["OldResourceProperties"]["MigrateFunctionVersion"] = json!(format!("{FUNCTION}:5"));

    migrate::handle(event.clone(), &pool, &http(), BUDGET)
        .await
        .unwrap();

    assert_answers(&endpoint.next().await, &event, "SUCCESS");
    assert!(common::tables(&pool).await.is_empty());
}

/// The configuration could not be read (a secret out of reach, a variable missing).
struct Unconfigured;

impl Connect for Unconfigured {
    async fn pool(&self) -> Result<MySqlPool, String> {
        Err("configuration: DB_HOST is not set".into())
    }
}

#[tokio::test]
async fn a_configuration_error_reports_failed_but_delete_still_succeeds() {
    let mut endpoint = ResponseEndpoint::start().await;
    let create = custom_resource_event("Create", &endpoint.url(), None);
    migrate::handle(create.clone(), &Unconfigured, &http(), BUDGET)
        .await
        .unwrap();
    let received = endpoint.next().await;
    assert_answers(&received, &create, "FAILED");
    assert!(
        received.body["Reason"]
            .as_str()
            .unwrap()
            .contains("DB_HOST is not set")
    );

    let delete = custom_resource_event("Delete", &endpoint.url(), Some("x"));
    migrate::handle(delete.clone(), &Unconfigured, &http(), BUDGET)
        .await
        .unwrap();
    assert_answers(&endpoint.next().await, &delete, "SUCCESS");
}

#[tokio::test]
async fn a_response_that_does_not_get_through_is_sent_again() {
    let pool = common::unreachable_pool().await;
    let mut endpoint = ResponseEndpoint::start_failing(1).await;
    let event = custom_resource_event("Delete", &endpoint.url(), Some("x"));

    migrate::handle(event.clone(), &pool, &http(), BUDGET)
        .await
        .unwrap();

    let first = endpoint.next().await;
    let second = endpoint.next().await;
    assert_eq!(first.body, second.body);
    assert_answers(&second, &event, "SUCCESS");
}

#[tokio::test]
async fn a_response_that_never_gets_through_is_an_invocation_error() {
    // Lambda then retries the asynchronous invocation, and CloudFormation gets its answer.
    let pool = common::unreachable_pool().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/response", listener.local_addr().unwrap());
    drop(listener);
    let event = custom_resource_event("Delete", &url, Some("x"));

    let error = migrate::handle(event, &pool, &http(), BUDGET)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("could not deliver"), "{error}");
}

#[tokio::test]
async fn malformed_and_unknown_events_are_invocation_errors() {
    let pool = common::unreachable_pool().await;
    let mut no_url = custom_resource_event("Create", "http://127.0.0.1:9/", None);
    no_url.as_object_mut().unwrap().remove("ResponseURL");
    let error = migrate::handle(no_url, &pool, &http(), BUDGET)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("ResponseURL"), "{error}");

    for event in [json!({}), json!("Create"), json!({"RequestTyp": "Create"})] {
        let error = migrate::handle(event, &pool, &http(), BUDGET)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("unrecognised event"), "{error}");
    }
}
