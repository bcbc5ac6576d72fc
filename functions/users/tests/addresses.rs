//! Address books: `/users/{user_id}/addresses`, through the users router and MariaDB.

use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, TestUser, in_parallel};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, users::router)
}

fn home() -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "12 Rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "fr"
    })
}

async fn add(app: &TestApp, caller: &TestUser, owner: u64, body: Value) -> testkit::TestResponse {
    app.post(&format!("/users/{owner}/addresses"))
        .token(&caller.token)
        .json(body)
        .send()
        .await
}

async fn addresses_of(app: &TestApp, user: u64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM addresses WHERE user_id = ?")
        .bind(user)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_customer_keeps_an_address_book(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;

    let response = add(&app, &ada, ada.id, home()).await;
    let first = response.expect(201).clone();
    let id = first["id"].as_u64().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/users/{}/addresses/{id}", ada.id).as_str())
    );
    assert_eq!(first["country"], "FR", "stored upper-case");
    assert_eq!(first["line2"], Value::Null);
    assert_eq!(first["phone"], Value::Null);
    assert_eq!(first["city"], "Paris");
    assert!(first["created_at"].is_string());

    let mut office = home();
    office["name"] = json!("Ada at work");
    office["line2"] = json!("3rd floor");
    office["phone"] = json!("+49 30 1234567");
    office["country"] = json!("DE");
    let second = add(&app, &ada, ada.id, office).await.expect(201).clone();
    assert_eq!(second["line2"], "3rd floor");

    let list = app
        .get(&format!("/users/{}/addresses", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada at work", "Ada Lovelace"], "newest first");

    app.delete(&format!("/users/{}/addresses/{id}", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    let again = app
        .delete(&format!("/users/{}/addresses/{id}", ada.id))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(again.problem(404)["detail"], "The address does not exist.");
    assert_eq!(addresses_of(&app, ada.id).await, 1);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn another_customers_book_is_not_found_and_an_admin_manages_any(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let admin = app.admin().await;
    let adas = add(&app, &ada, ada.id, home()).await.expect(201)["id"]
        .as_u64()
        .unwrap();

    for response in [
        app.get(&format!("/users/{}/addresses", ada.id))
            .token(&bob.token)
            .send()
            .await,
        add(&app, &bob, ada.id, home()).await,
        app.delete(&format!("/users/{}/addresses/{adas}", ada.id))
            .token(&bob.token)
            .send()
            .await,
        // Bob's own path does not reach Ada's address either.
        app.delete(&format!("/users/{}/addresses/{adas}", bob.id))
            .token(&bob.token)
            .send()
            .await,
    ] {
        response.problem(404);
    }
    assert_eq!(addresses_of(&app, ada.id).await, 1);
    assert_eq!(addresses_of(&app, bob.id).await, 0);

    add(&app, &admin, ada.id, home()).await.expect(201);
    let listed = app
        .get(&format!("/users/{}/addresses", ada.id))
        .token(&admin.token)
        .send()
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed, 2);
    app.delete(&format!("/users/{}/addresses/{adas}", ada.id))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    app.get("/users/424242/addresses")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
    add(&app, &admin, 424242, home()).await.problem(404);
    app.get(&format!("/users/{}/addresses", ada.id))
        .send()
        .await
        .problem(401);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn every_invalid_field_is_named_and_nothing_is_stored(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;

    let response = add(
        &app,
        &ada,
        ada.id,
        json!({
            "name": "   ",
            "line1": "x".repeat(201),
            "line2": "y".repeat(201),
            "postal_code": "",
            "city": "c".repeat(101),
            "country": "ZZ",
            "phone": "1".repeat(31)
        }),
    )
    .await;
    for field in [
        "name",
        "line1",
        "line2",
        "postal_code",
        "city",
        "country",
        "phone",
    ] {
        response.invalid_field(field);
    }
    assert_eq!(response.body["errors"].as_array().unwrap().len(), 7);

    // Not a code, not alpha-2, not assigned: all refused by the ISO list, not by shape.
    for country in ["FRA", "F", "", "XX", "12", "é"] {
        let mut body = home();
        body["country"] = json!(country);
        add(&app, &ada, ada.id, body).await.invalid_field("country");
    }
    let mut missing = home();
    missing.as_object_mut().unwrap().remove("city");
    add(&app, &ada, ada.id, missing).await.problem(400);
    let mut extra = home();
    extra["colour"] = json!("blue");
    add(&app, &ada, ada.id, extra).await.problem(400);

    assert_eq!(app.count("addresses").await, 0);

    // Lengths are in characters: 100 characters of a multi-byte script fit.
    let mut long = home();
    long["name"] = json!("é".repeat(100));
    long["country"] = json!("gb");
    let stored = add(&app, &ada, ada.id, long).await.expect(201).clone();
    assert_eq!(stored["country"], "GB");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_book_holds_twenty_addresses(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    for _ in 0..20 {
        add(&app, &ada, ada.id, home()).await.expect(201);
    }
    let full = add(&app, &ada, ada.id, home()).await;
    assert_eq!(full.problem(409)["type"], "/problems/address-limit");
    assert_eq!(addresses_of(&app, ada.id).await, 20);

    // Room again after a deletion.
    let id: u64 = sqlx::query_scalar("SELECT MIN(id) FROM addresses WHERE user_id = ?")
        .bind(ada.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    app.delete(&format!("/users/{}/addresses/{id}", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    add(&app, &ada, ada.id, home()).await.expect(201);
    assert_eq!(addresses_of(&app, ada.id).await, 20);
}

/// Additions racing each other cannot pass the limit together: the user row is locked
/// while the book is counted.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_additions_stop_at_twenty(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let ada = Arc::new(app.customer().await);
    let statuses = in_parallel(32, |_| {
        let (app, ada) = (app.clone(), ada.clone());
        async move { add(&app, &ada, ada.id, home()).await.status.as_u16() }
    })
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 12);
    assert_eq!(addresses_of(&app, ada.id).await, 20);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn deleting_the_account_deletes_its_addresses(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    add(&app, &ada, ada.id, home()).await.expect(201);
    add(&app, &ada, ada.id, home()).await.expect(201);
    add(&app, &bob, bob.id, home()).await.expect(201);

    app.delete(&format!("/users/{}", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    assert_eq!(addresses_of(&app, ada.id).await, 0);
    assert_eq!(addresses_of(&app, bob.id).await, 1);
}
