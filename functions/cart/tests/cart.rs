use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, http_api_event, in_parallel, invoke_lambda, lambda_body};

fn app(pool: MySqlPool) -> TestApp {
    TestApp::new(pool, cart::router)
}

async fn cart_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM cart_items")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn lines_are_set_priced_at_current_prices_and_removed(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4.10", 10).await;
    let pen = app.product("Pen", "0.35", 100).await;
    let base = format!("/users/{}/cart", ada.id);

    let empty = app.get(&base).token(&ada.token).send().await;
    assert_eq!(
        empty.expect(200),
        &json!({"user_id": ada.id, "items": [], "total": 0.0})
    );

    app.put(&format!("{base}/items/{mug}"))
        .token(&ada.token)
        .json(json!({"quantity": 2}))
        .send()
        .await
        .expect(200);
    let cart = app
        .put(&format!("{base}/items/{pen}"))
        .token(&ada.token)
        .json(json!({"quantity": 3}))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(
        cart["items"][0],
        json!({"product_id": mug, "variant_id": cart["items"][0]["variant_id"], "name": "Mug",
               "sku": format!("P{mug}"), "options": {}, "unit_price": 4.1, "quantity": 2,
               "line_total": 8.2})
    );
    assert_eq!(cart["items"][1]["line_total"], json!(1.05));
    assert_eq!(cart["total"], json!(9.25));

    // Setting a line again replaces its quantity; prices follow the product.
    app.put(&format!("{base}/items/{mug}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .expect(200);
    sqlx::query("UPDATE variants SET price = 5 WHERE product_id = ?")
        .bind(mug)
        .execute(app.pool())
        .await
        .unwrap();
    let cart = app
        .get(&base)
        .token(&ada.token)
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(cart["items"][0]["quantity"], 1);
    assert_eq!(cart["total"], json!(6.05));

    app.delete(&format!("{base}/items/{pen}"))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    app.delete(&format!("{base}/items/{pen}"))
        .token(&ada.token)
        .send()
        .await
        .problem(404);
    assert_eq!(cart_rows(&app).await, 1);
    app.delete(&base).token(&ada.token).send().await.expect(204);
    assert_eq!(cart_rows(&app).await, 0);
    app.delete(&base).token(&ada.token).send().await.expect(204);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn bad_lines_are_refused_and_change_nothing(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 3).await;
    let line = |product: u64| format!("/users/{}/cart/items/{product}", ada.id);

    let over = app
        .put(&line(mug))
        .token(&ada.token)
        .json(json!({"quantity": 4}))
        .send()
        .await;
    assert_eq!(over.problem(409)["type"], "/problems/insufficient-stock");
    app.put(&line(424242))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .problem(404);
    for bad in [
        json!({"quantity": 0}),
        json!({"quantity": 1001}),
        json!({"quantity": -2}),
        json!({"quantity": "1"}),
        json!({}),
    ] {
        app.put(&line(mug))
            .token(&ada.token)
            .json(bad)
            .send()
            .await
            .invalid_field("quantity");
    }
    app.put(&line(mug))
        .token(&ada.token)
        .json(json!({"quantity": 1, "note": "x"}))
        .send()
        .await
        .invalid_field("note");
    app.put(&format!("/users/{}/cart/items/abc", ada.id))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .invalid_field("product_id");
    assert_eq!(cart_rows(&app).await, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn carts_are_for_their_owner_or_an_admin(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let bob = app.customer().await;
    let admin = app.admin().await;
    let mug = app.product("Mug", "4", 3).await;
    let base = format!("/users/{}/cart", ada.id);

    app.get(&base).send().await.problem(401);
    let hidden = app.get(&base).token(&bob.token).send().await;
    hidden.problem(404);
    app.put(&format!("{base}/items/{mug}"))
        .token(&bob.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .problem(404);
    app.post(&format!("{base}/checkout"))
        .token(&bob.token)
        .send()
        .await
        .problem(404);
    app.delete(&base)
        .token(&bob.token)
        .send()
        .await
        .problem(404);

    app.put(&format!("{base}/items/{mug}"))
        .token(&admin.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        app.get(&base).token(&ada.token).send().await.expect(200)["items"][0]["product_id"],
        mug
    );
    app.get("/users/999999/cart")
        .token(&admin.token)
        .send()
        .await
        .problem(404);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn checkout_turns_the_cart_into_an_order_and_empties_it(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4.10", 10).await;
    let pen = app.product("Pen", "0.35", 100).await;
    let base = format!("/users/{}/cart", ada.id);
    app.put(&format!("{base}/items/{mug}"))
        .token(&ada.token)
        .json(json!({"quantity": 2}))
        .send()
        .await
        .expect(200);
    app.put(&format!("{base}/items/{pen}"))
        .token(&ada.token)
        .json(json!({"quantity": 3}))
        .send()
        .await
        .expect(200);

    let response = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .send()
        .await;
    let order = response.expect(201).clone();
    assert_eq!(
        response.header("location"),
        Some(format!("/orders/{}", order["id"]).as_str())
    );
    assert_eq!(order["status"], "pending");
    assert_eq!(order["user_id"], ada.id);
    assert_eq!(order["total"], json!(9.25));
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.stock(mug).await, 8);
    assert_eq!(app.stock(pen).await, 97);
    assert_eq!(cart_rows(&app).await, 0);

    let empty = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .json(json!({}))
        .send()
        .await;
    assert_eq!(empty.problem(409)["type"], "/problems/empty-cart");
    app.post(&format!("{base}/checkout"))
        .token(&ada.token)
        .json(json!({"coupon": "x"}))
        .send()
        .await
        .invalid_field("coupon");
    app.post(&format!("{base}/checkout"))
        .token(&ada.token)
        .raw("text/plain", "hello")
        .send()
        .await
        .problem(415);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn checkout_rechecks_stock_that_moved(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 5).await;
    let base = format!("/users/{}/cart", ada.id);
    app.put(&format!("{base}/items/{mug}"))
        .token(&ada.token)
        .json(json!({"quantity": 4}))
        .send()
        .await
        .expect(200);
    sqlx::query("UPDATE variants SET stock = 2 WHERE product_id = ?")
        .bind(mug)
        .execute(app.pool())
        .await
        .unwrap();

    let short = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(short.problem(409)["type"], "/problems/insufficient-stock");
    assert_eq!(app.stock(mug).await, 2);
    assert_eq!(
        cart_rows(&app).await,
        1,
        "the cart is kept for the customer to fix"
    );
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(orders, 0);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn checkout_is_idempotent_even_in_parallel(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let ada = Arc::new(app.customer().await);
    let mug = app.product("Mug", "4", 50).await;
    app.put(&format!("/users/{}/cart/items/{mug}", ada.id))
        .token(&ada.token)
        .json(json!({"quantity": 5}))
        .send()
        .await
        .expect(200);

    let responses = in_parallel(10, |_| {
        let (app, ada) = (app.clone(), ada.clone());
        async move {
            let r = app
                .post(&format!("/users/{}/cart/checkout", ada.id))
                .token(&ada.token)
                .header("idempotency-key", "checkout-1")
                .send()
                .await;
            (r.status.as_u16(), r.raw)
        }
    })
    .await;
    assert!(
        responses
            .iter()
            .all(|r| r.0 == 201 && r.1 == responses[0].1),
        "{:?}",
        responses.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert_eq!(app.stock(mug).await, 45);
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(orders, 1);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cart_through_lambda_events(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 5).await;
    let auth = json!({"authorization": format!("Bearer {}", ada.token)});
    let set = invoke_lambda(
        app.router.clone(),
        http_api_event(
            "PUT",
            &format!("/users/{}/cart/items/{mug}", ada.id),
            "",
            auth.clone(),
            Some(r#"{"quantity":2}"#),
        ),
    )
    .await;
    assert_eq!(set["statusCode"], 200);
    assert_eq!(lambda_body(&set)["total"], json!(8.0));
    let checkout = invoke_lambda(
        app.router.clone(),
        http_api_event(
            "POST",
            &format!("/users/{}/cart/checkout", ada.id),
            "",
            auth,
            None,
        ),
    )
    .await;
    assert_eq!(checkout["statusCode"], 201);
    assert_eq!(
        lambda_body(&checkout)["items"][0]["quantity"],
        Value::from(2)
    );
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn whole_numbers_written_as_floats_are_quantities(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 5).await;
    let cart = app
        .put(&format!("/users/{}/cart/items/{mug}", ada.id))
        .token(&ada.token)
        .json(json!({"quantity": 2.0}))
        .send()
        .await;
    assert_eq!(cart.expect(200)["items"][0]["quantity"], 2);
    app.put(&format!("/users/{}/cart/items/{mug}", ada.id))
        .token(&ada.token)
        .json(json!({"quantity": 2.5}))
        .send()
        .await
        .invalid_field("quantity");
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_cart_can_never_total_more_than_money_holds(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let yacht = app.product("Yacht", "99999999.99", 5).await;
    let pen = app.product("Pen", "1", 5).await;
    let base = format!("/users/{}/cart", ada.id);
    app.put(&format!("{base}/items/{yacht}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .expect(200);
    let over = app
        .put(&format!("{base}/items/{pen}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await;
    assert_eq!(over.problem(409)["type"], "/problems/cart-total-too-large");
    app.put(&format!("{base}/items/{yacht}"))
        .token(&ada.token)
        .json(json!({"quantity": 2}))
        .send()
        .await
        .problem(409);
    assert_eq!(cart_rows(&app).await, 1);

    // A price rise after the line was set: checkout refuses with 409, the cart is the problem.
    sqlx::query("INSERT INTO cart_items (user_id, product_id, variant_id, quantity) SELECT ?, ?, id, 1 FROM variants WHERE product_id = ?")
        .bind(ada.id)
        .bind(pen)
        .bind(pen)
        .execute(app.pool())
        .await
        .unwrap();
    let refused = app
        .post(&format!("{base}/checkout"))
        .token(&ada.token)
        .send()
        .await;
    assert_eq!(refused.problem(409)["type"], "/problems/cart-not-orderable");
    assert_eq!(app.stock(yacht).await, 5);
}

/// The stock of a checkout is taken last, after its order is written; stock sold out at
/// that moment refuses the checkout (409) and leaves the cart as it was.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn stock_sold_out_during_checkout_keeps_the_cart(pool: MySqlPool) {
    let app = Arc::new(app(pool));
    let ada = Arc::new(app.customer().await);
    let mug = app.product("Mug", "4", 5).await;
    let pen = app.product("Pen", "1", 5).await;
    let base = format!("/users/{}/cart", ada.id);
    for product in [mug, pen] {
        app.put(&format!("{base}/items/{product}"))
            .token(&ada.token)
            .json(json!({"quantity": 2}))
            .send()
            .await
            .expect(200);
    }

    let mut rival = app.pool().begin().await.unwrap();
    sqlx::query("UPDATE variants SET stock = 1 WHERE product_id = ?")
        .bind(pen)
        .execute(&mut *rival)
        .await
        .unwrap();
    let checkout = tokio::spawn({
        let (app, ada, base) = (app.clone(), ada.clone(), base.clone());
        async move {
            app.post(&format!("{base}/checkout"))
                .token(&ada.token)
                .send()
                .await
        }
    });
    testkit::until_the_stock_is_being_taken(app.pool(), &checkout).await;
    rival.commit().await.unwrap();

    let refused = checkout.await.unwrap();
    let problem = refused.problem(409);
    assert_eq!(problem["type"], "/problems/insufficient-stock");
    assert_eq!(
        problem["errors"][0]["message"],
        format!("product {pen} has 1 in stock, 2 requested")
    );
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(app.stock(mug).await, 5);
    assert_eq!(app.count("cart_items").await, 2, "the cart is not emptied");
}

/// `n` products of one unit each, and a cart line for each in `user`'s cart, written
/// directly (as a cart filled before carts were limited could be).
async fn fill(app: &TestApp, user: u64, n: usize) -> Vec<u64> {
    let mut products = Vec::with_capacity(n);
    for i in 0..n {
        let id = app.product(&format!("Item {i}"), "1", 10).await;
        sqlx::query("INSERT INTO cart_items (user_id, product_id, variant_id, quantity) SELECT ?, ?, id, 1 FROM variants WHERE product_id = ?")
            .bind(user)
            .bind(id)
            .bind(id)
            .execute(app.pool())
            .await
            .unwrap();
        products.push(id);
    }
    products
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_cart_holds_at_most_as_many_products_as_an_order(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let lines = fill(&app, ada.id, 100).await;
    let extra = app.product("One too many", "1", 10).await;
    let base = format!("/users/{}/cart", ada.id);

    let refused = app
        .put(&format!("{base}/items/{extra}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await;
    assert_eq!(refused.problem(409)["type"], "/problems/cart-full");
    assert_eq!(cart_rows(&app).await, 100);
    // A line already there can still change, and a freed line can be taken.
    app.put(&format!("{base}/items/{}", lines[0]))
        .token(&ada.token)
        .json(json!({"quantity": 3}))
        .send()
        .await
        .expect(200);
    app.delete(&format!("{base}/items/{}", lines[1]))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    let cart = app
        .put(&format!("{base}/items/{extra}"))
        .token(&ada.token)
        .json(json!({"quantity": 1}))
        .send()
        .await
        .expect(200)
        .clone();
    assert_eq!(cart["items"].as_array().unwrap().len(), 100);
}

/// Additions at once to a nearly full cart: the lines are counted under the user's row
/// lock, so exactly enough of them get in.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn parallel_additions_fill_a_cart_exactly(pool: MySqlPool) {
    // A pool wide enough for every addition of a round to be in flight at once.
    let wide = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(16)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let app = Arc::new(TestApp::with_state(testkit::state(wide), cart::router));
    let first = app.customer().await;
    let lines = fill(&app, first.id, 97).await;
    let mut extras = Vec::new();
    for i in 0..12 {
        extras.push(app.product(&format!("Extra {i}"), "1", 10).await);
    }
    const ROUNDS: usize = 8;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let ada = Arc::new(app.customer().await);
        sqlx::query(
            "INSERT INTO cart_items (user_id, product_id, variant_id, quantity)
             SELECT ?, product_id, variant_id, 1 FROM cart_items WHERE user_id = ?",
        )
        .bind(ada.id)
        .bind(first.id)
        .execute(app.pool())
        .await
        .unwrap();
        let responses = in_parallel(12, |i| {
            let (app, ada, product) = (app.clone(), ada.clone(), extras[i]);
            async move {
                let r = app
                    .put(&format!("/users/{}/cart/items/{product}", ada.id))
                    .token(&ada.token)
                    .json(json!({"quantity": 1}))
                    .send()
                    .await;
                (r.status.as_u16(), r.body["type"].clone())
            }
        })
        .await;
        let added = responses.iter().filter(|(s, _)| *s == 200).count();
        let full = responses
            .iter()
            .filter(|(s, t)| *s == 409 && *t == "/problems/cart-full")
            .count();
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cart_items WHERE user_id = ?")
            .bind(ada.id)
            .fetch_one(app.pool())
            .await
            .unwrap();
        if (added, full, held) != (3, 9, 100) {
            broken.push(format!(
                "round {round}: {added} added, {full} refused, {held} lines"
            ));
        }
    }
    assert_eq!(lines.len(), 97);
    assert!(
        broken.is_empty(),
        "{} of {ROUNDS} rounds broke:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// A cart filled past the order limit (before carts were limited) is not ordered: an
/// order has at most 100 lines, whatever made them.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn checkout_refuses_a_cart_longer_than_an_order(pool: MySqlPool) {
    let app = app(pool);
    let ada = app.customer().await;
    let lines = fill(&app, ada.id, 101).await;
    let refused = app
        .post(&format!("/users/{}/cart/checkout", ada.id))
        .token(&ada.token)
        .send()
        .await;
    let problem = refused.problem(409);
    assert_eq!(problem["type"], "/problems/cart-not-orderable");
    assert_eq!(problem["errors"][0]["field"], "items");
    assert_eq!(app.count("orders").await, 0);
    assert_eq!(cart_rows(&app).await, 101, "the cart is kept");
    assert_eq!(app.stock(lines[0]).await, 10);
    // One line less, and it is an order.
    app.delete(&format!("/users/{}/cart/items/{}", ada.id, lines[100]))
        .token(&ada.token)
        .send()
        .await
        .expect(204);
    let order = app
        .post(&format!("/users/{}/cart/checkout", ada.id))
        .token(&ada.token)
        .send()
        .await
        .expect(201)
        .clone();
    assert_eq!(order["items"].as_array().unwrap().len(), 100);
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn checkout_counts_toward_the_pending_order_cap(pool: MySqlPool) {
    let mut state = testkit::state(pool);
    state.order_limits.max_pending = 2;
    let app = TestApp::with_state(state, cart::router);
    let ada = app.customer().await;
    let mug = app.product("Mug", "4", 10).await;
    let checkout = async || {
        app.put(&format!("/users/{}/cart/items/{mug}", ada.id))
            .token(&ada.token)
            .json(json!({"quantity": 1}))
            .send()
            .await
            .expect(200);
        app.post(&format!("/users/{}/cart/checkout", ada.id))
            .token(&ada.token)
            .send()
            .await
    };
    checkout().await.expect(201);
    checkout().await.expect(201);
    let refused = checkout().await;
    assert_eq!(
        refused.problem(409)["type"],
        "/problems/too-many-pending-orders"
    );
    assert_eq!(cart_rows(&app).await, 1, "the cart is kept");
    assert_eq!(app.count("orders").await, 2);
    assert_eq!(app.stock(mug).await, 8);
}
