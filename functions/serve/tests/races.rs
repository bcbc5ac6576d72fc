//! Races across resources: two functions acting on the same order at the same moment, each
//! through its own router (as two Lambda functions would) over one real database.
//!
//! Every test repeats its race for many rounds, each on a fresh order, and checks after each
//! round that stock and money add up: stock comes back exactly once, and only for orders
//! that were holding it; no payment is lost or counted twice.

use serde_json::json;
use shared::test_support::{TestApp, TestResponse, TestUser};
use sqlx::MySqlPool;

/// Rounds per race: enough for an unlocked read to lose the race many times over.
const ROUNDS: usize = 24;
const QUANTITY: u32 = 3;
const PRICE: &str = "5.00";

/// The functions involved, each with its own router, sharing one database.
struct Shop {
    users: TestApp,
    orders: TestApp,
    payments: TestApp,
    cart: TestApp,
}

impl Shop {
    fn new(pool: MySqlPool) -> Self {
        Self {
            users: TestApp::new(pool.clone(), users::router),
            orders: TestApp::new(pool.clone(), orders::router),
            payments: TestApp::new(pool.clone(), payments::router),
            cart: TestApp::new(pool, cart::router),
        }
    }

    fn pool(&self) -> &MySqlPool {
        self.orders.pool()
    }

    /// A new customer with a pending order for `QUANTITY` of `product`.
    async fn pending_order(&self, product: u64) -> (TestUser, u64) {
        let user = self.orders.customer().await;
        let order = self
            .orders
            .post("/orders")
            .token(&user.token)
            .json(json!({"items": [{"product_id": product, "quantity": QUANTITY}]}))
            .send()
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap();
        (user, order)
    }

    /// A new customer with `QUANTITY` of `product` in their cart.
    async fn filled_cart(&self, product: u64) -> TestUser {
        let user = self.cart.customer().await;
        self.cart
            .put(&format!("/users/{}/cart/items/{product}", user.id))
            .token(&user.token)
            .json(json!({"quantity": QUANTITY}))
            .send()
            .await
            .expect(200);
        user
    }

    async fn delete_account(&self, user: &TestUser) -> TestResponse {
        self.users
            .delete(&format!("/users/{}", user.id))
            .token(&user.token)
            .send()
            .await
    }

    async fn delete_order(&self, user: &TestUser, order: u64) -> TestResponse {
        self.orders
            .delete(&format!("/orders/{order}"))
            .token(&user.token)
            .send()
            .await
    }

    async fn cancel(&self, user: &TestUser, order: u64) -> TestResponse {
        self.orders
            .put(&format!("/orders/{order}"))
            .token(&user.token)
            .json(json!({"status": "cancelled"}))
            .send()
            .await
    }

    /// Pays the whole order (`QUANTITY` × `PRICE`).
    async fn pay_in_full(&self, user: &TestUser, order: u64) -> TestResponse {
        self.payments
            .post("/payments")
            .token(&user.token)
            .json(json!({"order_id": order, "amount": 15.00, "method": "card"}))
            .send()
            .await
    }

    async fn checkout(&self, user: &TestUser) -> TestResponse {
        self.cart
            .post(&format!("/users/{}/cart/checkout", user.id))
            .token(&user.token)
            .send()
            .await
    }

    async fn stock(&self, product: u64) -> i64 {
        i64::from(self.orders.stock(product).await)
    }

    /// The order's status, or `None` once it is gone.
    async fn status(&self, order: u64) -> Option<String> {
        sqlx::query_scalar("SELECT CAST(status AS CHAR) FROM orders WHERE id = ?")
            .bind(order)
            .fetch_optional(self.pool())
            .await
            .unwrap()
    }

    /// Money that adds up: every order's `amount_paid` is the sum of its completed
    /// payments, and a cancelled order has none.
    async fn money_adds_up(&self) -> Result<(), String> {
        let wrong: Vec<(u64, String, String, String)> = sqlx::query_as(
            "SELECT o.id, CAST(o.status AS CHAR), CAST(o.amount_paid AS CHAR),
                    CAST(COALESCE(SUM(IF(p.status = 'completed', p.amount, 0)), 0) AS CHAR)
             FROM orders o LEFT JOIN payments p ON p.order_id = o.id
             GROUP BY o.id, o.status, o.amount_paid
             HAVING o.amount_paid <> COALESCE(SUM(IF(p.status = 'completed', p.amount, 0)), 0)
                 OR (o.status = 'cancelled' AND o.amount_paid <> 0)",
        )
        .fetch_all(self.pool())
        .await
        .unwrap();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "orders whose money does not add up (id, status, paid, payments): {wrong:?}"
            ))
        }
    }
}

/// Runs both requests at once; which one is polled first alternates between rounds.
async fn race<A, B>(round: usize, a: A, b: B) -> (TestResponse, TestResponse)
where
    A: std::future::Future<Output = TestResponse>,
    B: std::future::Future<Output = TestResponse>,
{
    if round.is_multiple_of(2) {
        tokio::join!(a, b)
    } else {
        let (b, a) = tokio::join!(b, a);
        (a, b)
    }
}

fn code(response: &TestResponse) -> u16 {
    response.status.as_u16()
}

/// Fails with every round that broke, so the count shows how often the race was lost.
fn verdict(race: &str, broken: Vec<String>) {
    assert!(
        broken.is_empty(),
        "{race}: {} of {ROUNDS} rounds broke:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn account_deletion_racing_order_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, removal) = race(
            round,
            shop.delete_account(&user),
            shop.delete_order(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let ok = code(&account) == 204
            && matches!(code(&removal), 204 | 401 | 404)
            && end == start
            && shop.status(order).await.is_none();
        if !ok {
            broken.push(format!(
                "round {round}: account {}, order {}, stock {start} -> {end}",
                code(&account),
                code(&removal)
            ));
        }
    }
    verdict("account deletion × order deletion", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn account_deletion_racing_a_cancel_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, cancel) =
            race(round, shop.delete_account(&user), shop.cancel(&user, order)).await;
        let end = shop.stock(mug).await;
        let ok = code(&account) == 204
            && matches!(code(&cancel), 200 | 401 | 404)
            && end == start
            && shop.status(order).await.is_none();
        if !ok {
            broken.push(format!(
                "round {round}: account {}, cancel {}, stock {start} -> {end}",
                code(&account),
                code(&cancel)
            ));
        }
    }
    verdict("account deletion × cancel", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn account_deletion_racing_a_payment_never_returns_sold_stock(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, payment) = race(
            round,
            shop.delete_account(&user),
            shop.pay_in_full(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        // Paid first: the order was sold, and deleting the account does not unsell it.
        // Deleted first: the payment finds no order and the held stock is back.
        let expected = match code(&payment) {
            201 => start - i64::from(QUANTITY),
            _ => start,
        };
        let ok = code(&account) == 204
            && matches!(code(&payment), 201 | 401 | 404)
            && end == expected
            && shop.status(order).await.is_none();
        if !ok {
            broken.push(format!(
                "round {round}: account {}, payment {}, stock {start} -> {end} (expected {expected})",
                code(&account),
                code(&payment)
            ));
        }
    }
    verdict("account deletion × payment", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn account_deletion_racing_a_checkout_leaves_no_stock_held(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let user = shop.filled_cart(mug).await;
        let (account, checkout) =
            race(round, shop.delete_account(&user), shop.checkout(&user)).await;
        let end = shop.stock(mug).await;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = ?")
            .bind(user.id)
            .fetch_one(shop.pool())
            .await
            .unwrap();
        let ok = code(&account) == 204
            && matches!(code(&checkout), 201 | 401 | 404 | 409)
            && end == start
            && left == 0;
        if !ok {
            broken.push(format!(
                "round {round}: account {}, checkout {}, stock {start} -> {end}, orders left {left}",
                code(&account),
                code(&checkout)
            ));
        }
    }
    verdict("account deletion × checkout", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn cancel_racing_order_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (cancel, removal) = race(
            round,
            shop.cancel(&user, order),
            shop.delete_order(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        // Either order of events ends with the order gone or cancelled and the stock back once.
        let ok = matches!(code(&cancel), 200 | 404)
            && code(&removal) == 204
            && end == start
            && shop.status(order).await.is_none();
        if !ok {
            broken.push(format!(
                "round {round}: cancel {}, delete {}, stock {start} -> {end}",
                code(&cancel),
                code(&removal)
            ));
        }
    }
    verdict("cancel × order deletion", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn cancel_racing_a_payment_refunds_or_refuses_it(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (cancel, payment) = race(
            round,
            shop.cancel(&user, order),
            shop.pay_in_full(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let status = shop.status(order).await;
        // Cancelled first: the payment is refused (409) and the stock is back.
        // Paid first: the customer may no longer cancel a paid order (403), the stock stays sold.
        let ok = match (code(&cancel), code(&payment)) {
            (200, 409) => end == start && status.as_deref() == Some("cancelled"),
            (403, 201) => end == start - i64::from(QUANTITY) && status.as_deref() == Some("paid"),
            _ => false,
        } && shop.money_adds_up().await.is_ok();
        if !ok {
            broken.push(format!(
                "round {round}: cancel {}, payment {}, stock {start} -> {end}, status {status:?}",
                code(&cancel),
                code(&payment)
            ));
        }
    }
    verdict("cancel × payment", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn order_deletion_racing_a_payment_never_destroys_the_payment(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (removal, payment) = race(
            round,
            shop.delete_order(&user, order),
            shop.pay_in_full(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let payments: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE order_id = ?")
            .bind(order)
            .fetch_one(shop.pool())
            .await
            .unwrap();
        // Deleted first: the payment finds no order. Paid first: a paid order is not
        // deletable, and the payment stays on record.
        let ok = match (code(&removal), code(&payment)) {
            (204, 404) => end == start && payments == 0,
            (409, 201) => end == start - i64::from(QUANTITY) && payments == 1,
            _ => false,
        };
        if !ok {
            broken.push(format!(
                "round {round}: delete {}, payment {}, stock {start} -> {end}, payments {payments}",
                code(&removal),
                code(&payment)
            ));
        }
    }
    verdict("order deletion × payment", broken);
}

// ---- the expiry of a stock hold, racing everything else that acts on the order.
//
// The hold is made to run out (as if its time had passed) before each round; the system
// then cancels the order through one of its two paths: a sweep, or a read that settles it.

/// One sweep, as the scheduled function runs it.
async fn sweep(shop: &Shop) -> TestResponse {
    shared::housekeeping::sweep(shop.pool(), std::time::Duration::from_secs(30))
        .await
        .unwrap();
    TestResponse::empty(200)
}

/// A read of the order, which settles an expired hold before answering.
async fn read(shop: &Shop, user: &TestUser, order: u64) -> TestResponse {
    shop.orders
        .get(&format!("/orders/{order}"))
        .token(&user.token)
        .send()
        .await
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn expiry_racing_account_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        shop.orders.expire(order).await;
        let (expiry, account) = race(round, sweep(&shop), shop.delete_account(&user)).await;
        let end = shop.stock(mug).await;
        let ok = code(&account) == 204 && end == start && shop.status(order).await.is_none();
        if !ok {
            broken.push(format!(
                "round {round}: sweep {}, account {}, stock {start} -> {end}",
                code(&expiry),
                code(&account)
            ));
        }
    }
    verdict("expiry × account deletion", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn expiry_racing_order_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        shop.orders.expire(order).await;
        let (_, removal) = race(round, sweep(&shop), shop.delete_order(&user, order)).await;
        let end = shop.stock(mug).await;
        // Expired first: a cancelled order may be deleted. Deleted first: nothing to expire.
        let ok = code(&removal) == 204 && end == start && shop.status(order).await.is_none();
        if !ok {
            broken.push(format!(
                "round {round}: delete {}, stock {start} -> {end}",
                code(&removal)
            ));
        }
    }
    verdict("expiry × order deletion", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn expiry_racing_a_cancel_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        shop.orders.expire(order).await;
        let (_, cancel) = race(round, sweep(&shop), shop.cancel(&user, order)).await;
        let end = shop.stock(mug).await;
        // Either way the order ends cancelled once; the customer's cancel is then a no-op.
        let ok = code(&cancel) == 200
            && cancel.body["status"] == "cancelled"
            && end == start
            && shop.status(order).await.as_deref() == Some("cancelled");
        if !ok {
            broken.push(format!(
                "round {round}: cancel {}, stock {start} -> {end}",
                code(&cancel)
            ));
        }
    }
    verdict("expiry × cancel", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn expiry_racing_a_payment_takes_no_money(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        shop.orders.expire(order).await;
        let (_, payment) = race(round, sweep(&shop), shop.pay_in_full(&user, order)).await;
        let end = shop.stock(mug).await;
        let completed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments WHERE order_id = ? AND status = 'completed'",
        )
        .bind(order)
        .fetch_one(shop.pool())
        .await
        .unwrap();
        let ok = code(&payment) == 409
            && end == start
            && completed == 0
            && shop.status(order).await.as_deref() == Some("cancelled")
            && shop.money_adds_up().await.is_ok();
        if !ok {
            broken.push(format!(
                "round {round}: payment {}, stock {start} -> {end}, completed payments {completed}",
                code(&payment)
            ));
        }
    }
    verdict("expiry × payment", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn expiry_racing_a_checkout_keeps_the_new_hold(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        // The same customer has an expired order and a cart of the same product.
        let user = shop.filled_cart(mug).await;
        let old = shop
            .orders
            .post("/orders")
            .token(&user.token)
            .json(json!({"items": [{"product_id": mug, "quantity": QUANTITY}]}))
            .send()
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap();
        shop.orders.expire(old).await;
        let (_, checkout) = race(round, sweep(&shop), shop.checkout(&user)).await;
        let end = shop.stock(mug).await;
        let ok = code(&checkout) == 201
            && end == start - i64::from(QUANTITY)
            && shop.status(old).await.as_deref() == Some("cancelled");
        if !ok {
            broken.push(format!(
                "round {round}: checkout {}, stock {start} -> {end}",
                code(&checkout)
            ));
        }
    }
    verdict("expiry × checkout", broken);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_read_racing_the_sweep_settles_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    let mut broken = Vec::new();
    for round in 0..ROUNDS {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        shop.orders.expire(order).await;
        let (_, seen) = race(round, sweep(&shop), read(&shop, &user, order)).await;
        let end = shop.stock(mug).await;
        let ok = code(&seen) == 200
            && seen.body["status"] == "cancelled"
            && seen.body["expires_at"].is_null()
            && end == start;
        if !ok {
            broken.push(format!(
                "round {round}: read {} {}, stock {start} -> {end}",
                code(&seen),
                seen.body["status"]
            ));
        }
    }
    verdict("lazy expiry × sweep", broken);
}
