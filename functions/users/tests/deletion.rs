//! `DELETE /users/{id}`: the person and everything personal goes, the shop's records of
//! money and stock stay, anonymised. Through the users router and MariaDB; the rows the
//! other functions own are read from the database.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::TestApp;

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, users::router)
}

async fn register(app: &TestApp, email: &str, password: &str) -> u64 {
    app.post("/users/register")
        .json(json!({"name": "Ada", "email": email, "password": password}))
        .send()
        .await
        .expect(201)["id"]
        .as_u64()
        .unwrap()
}

async fn token(app: &TestApp, email: &str, password: &str) -> String {
    app.post("/users/login")
        .json(json!({"email": email, "password": password}))
        .send()
        .await
        .expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An order of `quantity` mugs at 5.00 for `user`, with a copy of a shipping address,
/// written without taking stock (so a return shows as a rise).
async fn order(app: &TestApp, user: u64, status: &str, mug: u64, quantity: u32) -> u64 {
    let total = 5 * quantity;
    let paid = if status == "pending" { 0 } else { total };
    let id = sqlx::query(
        "INSERT INTO orders (user_id, status, total, amount_paid, expires_at, ship_name, ship_line1,
                             ship_postal_code, ship_city, ship_country, ship_phone, tracking_number)
         VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, 'Ada Lovelace', '12 Rue de la Paix',
                 '75002', 'Paris', 'FR', '+33 1 23 45 67 89', IF(? = 'delivered', 'TRACK-1', NULL))",
    )
    .bind(user)
    .bind(status)
    .bind(total)
    .bind(paid)
    .bind(status)
    .execute(app.pool())
    .await
    .unwrap()
    .last_insert_id();
    sqlx::query(
        "INSERT INTO order_items (order_id, product_id, variant_id, product_name, unit_price, quantity, line_total)
         SELECT ?, product_id, id, 'Mug', 5, ?, ? FROM variants WHERE product_id = ?",
    )
    .bind(id)
    .bind(quantity)
    .bind(total)
    .bind(mug)
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query("INSERT INTO order_status_history (order_id, status, actor) VALUES (?, 'pending', 'customer')")
        .bind(id)
        .execute(app.pool())
        .await
        .unwrap();
    id
}

async fn pay(app: &TestApp, order: u64, amount: u32, status: &str) {
    sqlx::query("INSERT INTO payments (order_id, amount, method, status) VALUES (?, ?, 'card', ?)")
        .bind(order)
        .bind(amount)
        .bind(status)
        .execute(app.pool())
        .await
        .unwrap();
    if status == "completed" {
        sqlx::query(
            "UPDATE orders SET amount_paid = amount_paid + ? WHERE id = ? AND status = 'pending'",
        )
        .bind(amount)
        .bind(order)
        .execute(app.pool())
        .await
        .unwrap();
    }
}

async fn rows(app: &TestApp, sql: &str, id: impl ToString) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id.to_string())
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// (status, user_id, amount_paid, ship_name, tracking_number) of an order.
async fn order_row(
    app: &TestApp,
    id: u64,
) -> (String, Option<u64>, String, Option<String>, Option<String>) {
    sqlx::query_as(
        "SELECT CAST(status AS CHAR), user_id, CAST(amount_paid AS CHAR), ship_name, tracking_number
         FROM orders WHERE id = ?",
    )
    .bind(id)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

async fn payment_statuses(app: &TestApp, order: u64) -> Vec<String> {
    sqlx::query_scalar("SELECT CAST(status AS CHAR) FROM payments WHERE order_id = ? ORDER BY id")
        .bind(order)
        .fetch_all(app.pool())
        .await
        .unwrap()
}

async fn last_history(app: &TestApp, order: u64) -> (String, String) {
    sqlx::query_as(
        "SELECT CAST(status AS CHAR), CAST(actor AS CHAR) FROM order_status_history
         WHERE order_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(order)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn deleting_an_account_erases_the_person_and_keeps_the_money_records(pool: MySqlPool) {
    let app = app(pool);
    let ada = register(&app, "ada@example.com", "password-a").await;
    let ada_token = token(&app, "ada@example.com", "password-a").await;
    let bob = app.customer().await;
    let db = app.pool();
    let mug = app.product("Mug", "5", 10).await;
    sqlx::query("UPDATE products SET review_count = 2, rating_sum = 9 WHERE id = ?")
        .bind(mug)
        .execute(db)
        .await
        .unwrap();
    let pen = app.product("Pen", "1", 3).await;

    // A pending order of 4 mugs, partly paid; a delivered one (2 mugs, sold); a cancelled
    // one whose payment was refunded.
    let pending = order(&app, ada, "pending", mug, 4).await;
    pay(&app, pending, 5, "completed").await;
    let delivered = order(&app, ada, "delivered", mug, 2).await;
    pay(&app, delivered, 10, "completed").await;
    let cancelled = order(&app, ada, "cancelled", mug, 1).await;
    pay(&app, cancelled, 5, "refunded").await;
    // Everything personal: an address, a cart, a review, an idempotency record, a failed
    // login attempt counted against the email.
    app.post(&format!("/users/{ada}/addresses"))
        .token(&ada_token)
        .json(json!({"name": "Ada", "line1": "1 Main St", "postal_code": "1000", "city": "Brussels", "country": "BE"}))
        .send()
        .await
        .expect(201);
    sqlx::query("INSERT INTO cart_items (user_id, product_id, variant_id, quantity) SELECT ?, ?, id, 1 FROM variants WHERE product_id = ?")
        .bind(ada)
        .bind(pen)
        .bind(pen)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO reviews (product_id, user_id, rating) VALUES (?, ?, 5), (?, ?, 4)")
        .bind(mug)
        .bind(ada)
        .bind(mug)
        .bind(bob.id)
        .execute(db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, route, request_hash, response_status, response_body)
         VALUES (?, 'k', 'POST /orders', REPEAT('0', 64), 201, '{\"shipping_address\": \"12 Rue de la Paix\"}')",
    )
    .bind(ada)
    .execute(db)
    .await
    .unwrap();
    app.post("/users/login")
        .json(json!({"email": "ada@example.com", "password": "wrong guess"}))
        .send()
        .await
        .problem(401);
    let throttled = "SELECT COUNT(*) FROM login_throttle WHERE email = ?";
    assert_eq!(rows(&app, throttled, "ada@example.com").await, 1);

    app.delete(&format!("/users/{ada}"))
        .token(&ada_token)
        .send()
        .await
        .expect(204);

    // The person is gone.
    assert_eq!(
        rows(&app, "SELECT COUNT(*) FROM users WHERE id = ?", ada).await,
        0
    );
    for table in ["addresses", "cart_items", "reviews", "idempotency_keys"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_id = ?");
        assert_eq!(rows(&app, &sql, ada).await, 0, "{table}");
    }
    assert_eq!(rows(&app, throttled, "ada@example.com").await, 0);
    let (stock, count, sum): (u32, u32, u32) =
        sqlx::query_as("SELECT (SELECT stock FROM variants WHERE product_id = p.id LIMIT 1), review_count, rating_sum FROM products p WHERE id = ?")
            .bind(mug)
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(
        stock, 14,
        "the pending order's 4 mugs are back, the delivered 2 stay sold"
    );
    assert_eq!((count, sum), (1, 4), "only Bob's review counts now");

    // Every order and payment stays, with no owner and no name or address.
    assert_eq!(app.count("orders").await, 3);
    assert_eq!(app.count("order_items").await, 3);
    assert_eq!(app.count("payments").await, 3);
    let named: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders WHERE user_id IS NOT NULL OR ship_name IS NOT NULL
         OR ship_line1 IS NOT NULL OR ship_postal_code IS NOT NULL OR ship_city IS NOT NULL
         OR ship_country IS NOT NULL OR ship_phone IS NOT NULL",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(named, 0, "no order names Ada or her address");
    // The pending order was cancelled exactly as a cancel: stock back, payment refunded,
    // its history noting who cancelled it.
    let (status, _, paid, _, _) = order_row(&app, pending).await;
    assert_eq!((status.as_str(), paid.as_str()), ("cancelled", "0.00"));
    assert_eq!(payment_statuses(&app, pending).await, ["refunded"]);
    assert_eq!(
        last_history(&app, pending).await,
        ("cancelled".into(), "customer".into())
    );
    let (status, _, paid, _, tracking) = order_row(&app, delivered).await;
    assert_eq!((status.as_str(), paid.as_str()), ("delivered", "10.00"));
    assert_eq!(
        tracking.as_deref(),
        Some("TRACK-1"),
        "the shop's own shipping record"
    );
    assert_eq!(payment_statuses(&app, delivered).await, ["completed"]);
    assert_eq!(payment_statuses(&app, cancelled).await, ["refunded"]);

    // The tokens name no one; the email is free, and the new account starts empty.
    app.get(&format!("/users/{ada}"))
        .token(&ada_token)
        .send()
        .await
        .problem(401);
    let again = register(&app, "ada@example.com", "password-a2").await;
    assert_ne!(again, ada);
    let fresh = token(&app, "ada@example.com", "password-a2").await;
    let profile = app
        .get(&format!("/users/{again}"))
        .token(&fresh)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(profile["orders"], json!([]));
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_account_the_shop_still_owes_goods_cannot_be_deleted(pool: MySqlPool) {
    let app = app(pool);
    let mug = app.product("Mug", "5", 10).await;
    for status in ["paid", "processing", "shipped"] {
        let ada = app.customer().await;
        let open = order(&app, ada.id, status, mug, 1).await;
        pay(&app, open, 5, "completed").await;
        let pending = order(&app, ada.id, "pending", mug, 2).await;
        sqlx::query("INSERT INTO cart_items (user_id, product_id, variant_id, quantity) SELECT ?, ?, id, 1 FROM variants WHERE product_id = ?")
            .bind(ada.id)
            .bind(mug)
            .bind(mug)
            .execute(app.pool())
            .await
            .unwrap();
        let refused = app
            .delete(&format!("/users/{}", ada.id))
            .token(&ada.token)
            .send()
            .await;
        let problem = refused.problem(409);
        assert_eq!(
            problem["type"], "/problems/account-has-open-orders",
            "{status}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(status),
            "{problem}"
        );
        // Nothing changed: not the account, not its cart, not its pending order.
        let user = "SELECT COUNT(*) FROM users WHERE id = ?";
        assert_eq!(rows(&app, user, ada.id).await, 1);
        let cart = "SELECT COUNT(*) FROM cart_items WHERE user_id = ?";
        assert_eq!(rows(&app, cart, ada.id).await, 1);
        assert_eq!(order_row(&app, pending).await.0, "pending");
        assert_eq!(order_row(&app, open).await.1, Some(ada.id));
        app.get(&format!("/users/{}", ada.id))
            .token(&ada.token)
            .send()
            .await
            .expect(200);

        // Delivered, the shop owes nothing more: the account can go.
        sqlx::query("UPDATE orders SET status = 'delivered' WHERE id = ?")
            .bind(open)
            .execute(app.pool())
            .await
            .unwrap();
        app.delete(&format!("/users/{}", ada.id))
            .token(&ada.token)
            .send()
            .await
            .expect(204);
        assert_eq!(order_row(&app, open).await.1, None);
        assert_eq!(payment_statuses(&app, open).await, ["completed"]);
    }
    // The orders were written without taking stock: each pending one's 2 mugs came back.
    assert_eq!(app.stock(mug).await, 16, "returned once per pending order");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn an_admin_deleting_an_account_cancels_as_an_admin_and_expired_holds_as_the_system(
    pool: MySqlPool,
) {
    let app = app(pool);
    let admin = app.admin().await;
    let bob = app.customer().await;
    let mug = app.product("Mug", "5", 10).await;
    let held = order(&app, bob.id, "pending", mug, 1).await;
    let expired = order(&app, bob.id, "pending", mug, 2).await;
    app.expire(expired).await;
    app.delete(&format!("/users/{}", bob.id))
        .token(&admin.token)
        .send()
        .await
        .expect(204);
    assert_eq!(
        last_history(&app, held).await,
        ("cancelled".into(), "admin".into())
    );
    assert_eq!(
        last_history(&app, expired).await,
        ("cancelled".into(), "system".into())
    );
    assert_eq!(app.stock(mug).await, 13, "both orders' mugs are back, once");
}

/// The schema keeps money records even against a statement the API would never send.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_schema_refuses_to_lose_a_payment(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "5", 10).await;
    let paid = order(&app, ada.id, "paid", mug, 1).await;
    pay(&app, paid, 5, "completed").await;

    let deleted = sqlx::query("DELETE FROM orders WHERE id = ?")
        .bind(paid)
        .execute(app.pool())
        .await;
    let err = deleted.expect_err("an order with a payment cannot be deleted");
    assert!(
        err.as_database_error()
            .is_some_and(|e| e.is_foreign_key_violation()),
        "{err}"
    );

    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(ada.id)
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(
        order_row(&app, paid).await.1,
        None,
        "the order loses its owner only"
    );
    assert_eq!(payment_statuses(&app, paid).await, ["completed"]);
}
