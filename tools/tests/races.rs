//! Races across resources: two functions acting on the same order at the same moment, each
//! through its own router (as two Lambda functions would) over one real database.
//!
//! Every test repeats its race for many rounds, each on a fresh order, and checks after each
//! round that stock and money add up: stock comes back exactly once, and only for orders
//! that were holding it; no payment is lost or counted twice.

use serde_json::json;
use sqlx::MySqlPool;
use testkit::{TestResponse, TestUser};

mod common;
use common::Shop;

/// Rounds per race: enough for an unlocked read to lose the race many times over.
const ROUNDS: usize = 24;
const QUANTITY: u32 = 3;
const PRICE: &str = "5.00";

impl Shop {
    /// A new customer with a pending order for `QUANTITY` of `product`.
    async fn pending_order(&self, product: u64) -> (TestUser, u64) {
        let user = self.orders.customer().await;
        let order = self.order_for(&user, product).await;
        (user, order)
    }

    /// A pending order for `QUANTITY` of `product` by an existing customer.
    async fn order_for(&self, user: &TestUser, product: u64) -> u64 {
        self.orders
            .post("/orders")
            .token(&user.token)
            .json(json!({"items": [{"product_id": product, "quantity": QUANTITY}]}))
            .send()
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap()
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

    /// A read of the order, which settles an expired hold before answering.
    async fn read(&self, user: &TestUser, order: u64) -> TestResponse {
        self.orders
            .get(&format!("/orders/{order}"))
            .token(&user.token)
            .send()
            .await
    }

    async fn payments_of(&self, order: u64) -> i64 {
        self.count_payments(order, "").await
    }

    async fn completed_payments_of(&self, order: u64) -> i64 {
        self.count_payments(order, " AND status = 'completed'")
            .await
    }

    /// `condition` comes from the tests themselves, never from input.
    async fn count_payments(&self, order: u64, condition: &str) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM payments WHERE order_id = ?{condition}"
        ))
        .bind(order)
        .fetch_one(self.pool())
        .await
        .unwrap()
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

    /// The order's owner: `None` once the order is gone, `Some(None)` once anonymised.
    async fn owner(&self, order: u64) -> Option<Option<u64>> {
        sqlx::query_scalar("SELECT user_id FROM orders WHERE id = ?")
            .bind(order)
            .fetch_optional(self.pool())
            .await
            .unwrap()
    }

    async fn user_exists(&self, user: &TestUser) -> bool {
        sqlx::query_scalar::<_, u64>("SELECT id FROM users WHERE id = ?")
            .bind(user.id)
            .fetch_optional(self.pool())
            .await
            .unwrap()
            .is_some()
    }

    /// How many times the order entered `cancelled`: a cancel happens once or not at all.
    async fn cancels(&self, order: u64) -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM order_status_history WHERE order_id = ? AND status = 'cancelled'",
        )
        .bind(order)
        .fetch_one(self.pool())
        .await
        .unwrap()
    }

    /// Where an account deletion leaves an order it found pending: cancelled once, kept,
    /// owned by no one.
    async fn cancelled_and_anonymised(&self, order: u64) -> bool {
        self.status(order).await.as_deref() == Some("cancelled")
            && self.owner(order).await == Some(None)
            && self.cancels(order).await == 1
    }

    /// Pays `amount` on the order, under an `Idempotency-Key` when one is given.
    async fn pay(
        &self,
        user: &TestUser,
        order: u64,
        amount: &str,
        key: Option<&str>,
    ) -> TestResponse {
        let mut call = self.payments.post("/payments").token(&user.token);
        if let Some(key) = key {
            call = call.header("idempotency-key", key);
        }
        let amount: serde_json::Value = serde_json::from_str(amount).unwrap();
        call.json(json!({"order_id": order, "amount": amount, "method": "card"}))
            .send()
            .await
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

/// Plays `round` [`ROUNDS`] times, each on fresh rows, and fails listing every round that
/// broke, so the count shows how often the race was lost.
async fn rounds(race: &str, mut round: impl AsyncFnMut(usize) -> Result<(), String>) {
    let mut broken = Vec::new();
    for n in 0..ROUNDS {
        if let Err(why) = round(n).await {
            broken.push(format!("round {n}: {why}"));
        }
    }
    assert!(
        broken.is_empty(),
        "{race}: {} of {ROUNDS} rounds broke:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// `Ok` when the round's outcome is one the rules allow, else what was seen.
fn expect(ok: bool, seen: String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(seen) }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_order_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × order deletion", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, removal) = race(
            round,
            shop.delete_account(&user),
            shop.delete_order(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        // Order deleted first: it is gone. Account deleted first: the order was cancelled
        // and kept, and the customer can no longer reach it.
        let ok = code(&account) == 204
            && end == start
            && match code(&removal) {
                204 => shop.status(order).await.is_none(),
                401 | 404 => shop.cancelled_and_anonymised(order).await,
                _ => false,
            };
        let (a, r) = (code(&account), code(&removal));
        expect(
            ok,
            format!("account {a}, order {r}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_a_cancel_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × cancel", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, cancel) =
            race(round, shop.delete_account(&user), shop.cancel(&user, order)).await;
        let end = shop.stock(mug).await;
        let ok = code(&account) == 204
            && matches!(code(&cancel), 200 | 401 | 404)
            && end == start
            && shop.cancelled_and_anonymised(order).await;
        let (a, c) = (code(&account), code(&cancel));
        expect(
            ok,
            format!("account {a}, cancel {c}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_a_payment_keeps_money_and_stock_straight(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × payment", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, payment) = race(
            round,
            shop.delete_account(&user),
            shop.pay_in_full(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let payments = shop.payments_of(order).await;
        // Paid first: the shop owes the customer goods, so the account stays (409) and the
        // stock stays sold. Deleted first: the order was cancelled and kept, the payment
        // finds no order of the caller's, and the stock is back.
        let ok = match (code(&account), code(&payment)) {
            (409, 201) => {
                end == start - i64::from(QUANTITY)
                    && shop.status(order).await.as_deref() == Some("paid")
                    && shop.owner(order).await == Some(Some(user.id))
                    && payments == 1
                    && account.body["type"] == "/problems/account-has-open-orders"
            }
            (204, 401 | 404) => {
                end == start && shop.cancelled_and_anonymised(order).await && payments == 0
            }
            _ => false,
        } && shop.money_adds_up().await.is_ok();
        let (a, p) = (code(&account), code(&payment));
        expect(
            ok,
            format!("account {a}, payment {p}, stock {start} -> {end}, payments {payments}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_a_checkout_leaves_no_stock_held(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × checkout", async |round| {
        let start = shop.stock(mug).await;
        let user = shop.filled_cart(mug).await;
        let (account, checkout) =
            race(round, shop.delete_account(&user), shop.checkout(&user)).await;
        let end = shop.stock(mug).await;
        let owned: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = ?")
            .bind(user.id)
            .fetch_one(shop.pool())
            .await
            .unwrap();
        // Checked out first: the deletion cancelled the new order and kept it.
        let placed = match code(&checkout) {
            201 => {
                let order = checkout.body["id"].as_u64().unwrap();
                shop.cancelled_and_anonymised(order).await
            }
            other => matches!(other, 401 | 404 | 409),
        };
        let ok = code(&account) == 204 && placed && end == start && owned == 0;
        let (a, c) = (code(&account), code(&checkout));
        expect(
            ok,
            format!("account {a}, checkout {c}, stock {start} -> {end}, orders owned {owned}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancel_racing_order_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("cancel × order deletion", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (cancel, removal) = race(
            round,
            shop.cancel(&user, order),
            shop.delete_order(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        // Either order of events ends with the order gone and the stock back once.
        let ok = matches!(code(&cancel), 200 | 404)
            && code(&removal) == 204
            && end == start
            && shop.status(order).await.is_none();
        let (c, r) = (code(&cancel), code(&removal));
        expect(
            ok,
            format!("cancel {c}, delete {r}, stock {start} -> {end}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancel_racing_a_payment_refunds_or_refuses_it(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("cancel × payment", async |round| {
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
        // Paid first: a customer may not cancel a paid order (403); the stock stays sold.
        let ok = match (code(&cancel), code(&payment)) {
            (200, 409) => end == start && status.as_deref() == Some("cancelled"),
            (403, 201) => end == start - i64::from(QUANTITY) && status.as_deref() == Some("paid"),
            _ => false,
        } && shop.money_adds_up().await.is_ok();
        let (c, p) = (code(&cancel), code(&payment));
        expect(
            ok,
            format!("cancel {c}, payment {p}, stock {start} -> {end}, status {status:?}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn order_deletion_racing_a_payment_never_destroys_the_payment(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("order deletion × payment", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (removal, payment) = race(
            round,
            shop.delete_order(&user, order),
            shop.pay_in_full(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let payments = shop.payments_of(order).await;
        // Deleted first: the payment finds no order. Paid first: a paid order is not
        // deletable, and the payment stays on record.
        let ok = match (code(&removal), code(&payment)) {
            (204, 404) => end == start && payments == 0,
            (409, 201) => end == start - i64::from(QUANTITY) && payments == 1,
            _ => false,
        };
        let (r, p) = (code(&removal), code(&payment));
        expect(
            ok,
            format!("delete {r}, payment {p}, stock {start} -> {end}, payments {payments}"),
        )
    })
    .await;
}

// ---- the expiry of a stock hold, racing everything else that acts on the order.
//
// The hold is made to run out (as if its time had passed) before each round; the system
// then cancels the order through one of its two paths: a sweep, or a read that settles it.

/// One sweep, as the scheduled function runs it.
async fn sweep(shop: &Shop) -> TestResponse {
    domain::housekeeping::sweep(shop.pool(), std::time::Duration::from_secs(30))
        .await
        .unwrap();
    TestResponse::empty(200)
}

/// A customer's pending order whose hold has run out.
async fn expired_order(shop: &Shop, product: u64) -> (TestUser, u64) {
    let (user, order) = shop.pending_order(product).await;
    shop.orders.expire(order).await;
    (user, order)
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn expiry_racing_account_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("expiry × account deletion", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = expired_order(&shop, mug).await;
        let (_, account) = race(round, sweep(&shop), shop.delete_account(&user)).await;
        let end = shop.stock(mug).await;
        let ok =
            code(&account) == 204 && end == start && shop.cancelled_and_anonymised(order).await;
        expect(
            ok,
            format!("account {}, stock {start} -> {end}", code(&account)),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn expiry_racing_order_deletion_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("expiry × order deletion", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = expired_order(&shop, mug).await;
        let (_, removal) = race(round, sweep(&shop), shop.delete_order(&user, order)).await;
        let end = shop.stock(mug).await;
        // Expired first: a cancelled order may be deleted. Deleted first: nothing to expire.
        let ok = code(&removal) == 204 && end == start && shop.status(order).await.is_none();
        expect(
            ok,
            format!("delete {}, stock {start} -> {end}", code(&removal)),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn expiry_racing_a_cancel_returns_stock_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("expiry × cancel", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = expired_order(&shop, mug).await;
        let (_, cancel) = race(round, sweep(&shop), shop.cancel(&user, order)).await;
        let end = shop.stock(mug).await;
        // Either way the order ends cancelled once; the customer's cancel is then a no-op.
        let ok = code(&cancel) == 200
            && cancel.body["status"] == "cancelled"
            && end == start
            && shop.status(order).await.as_deref() == Some("cancelled");
        expect(
            ok,
            format!("cancel {}, stock {start} -> {end}", code(&cancel)),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn expiry_racing_a_payment_takes_no_money(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("expiry × payment", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = expired_order(&shop, mug).await;
        let (_, payment) = race(round, sweep(&shop), shop.pay_in_full(&user, order)).await;
        let end = shop.stock(mug).await;
        let completed = shop.completed_payments_of(order).await;
        let ok = code(&payment) == 409
            && end == start
            && completed == 0
            && shop.status(order).await.as_deref() == Some("cancelled")
            && shop.money_adds_up().await.is_ok();
        let p = code(&payment);
        expect(
            ok,
            format!("payment {p}, stock {start} -> {end}, completed payments {completed}"),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn expiry_racing_a_checkout_keeps_the_new_hold(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("expiry × checkout", async |round| {
        let start = shop.stock(mug).await;
        // The same customer has an expired order and a cart of the same product.
        let user = shop.filled_cart(mug).await;
        let old = shop.order_for(&user, mug).await;
        shop.orders.expire(old).await;
        let (_, checkout) = race(round, sweep(&shop), shop.checkout(&user)).await;
        let end = shop.stock(mug).await;
        let ok = code(&checkout) == 201
            && end == start - i64::from(QUANTITY)
            && shop.status(old).await.as_deref() == Some("cancelled");
        expect(
            ok,
            format!("checkout {}, stock {start} -> {end}", code(&checkout)),
        )
    })
    .await;
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_read_racing_the_sweep_settles_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("lazy expiry × sweep", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = expired_order(&shop, mug).await;
        let (_, seen) = race(round, sweep(&shop), shop.read(&user, order)).await;
        let end = shop.stock(mug).await;
        let ok = code(&seen) == 200
            && seen.body["status"] == "cancelled"
            && seen.body["expires_at"].is_null()
            && end == start;
        let status = &seen.body["status"];
        expect(
            ok,
            format!("read {} {status}, stock {start} -> {end}", code(&seen)),
        )
    })
    .await;
}

/// An order is written before its stock is taken and its lines hold no key to their
/// products, so a product deleted at that moment must neither leave a line pointing at
/// nothing nor break the order: it is refused, or placed and its line unlinked.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn product_deletion_racing_an_order_leaves_no_line_pointing_at_nothing(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let admin = shop.products.admin().await;
    rounds("product deletion × order", async |round| {
        // A buyer each round: the orders placed stay pending, and a customer holds only so
        // many at once.
        let user = shop.orders.customer().await;
        let mug = shop.orders.product("Mug", PRICE, 10).await;
        let placing = shop
            .orders
            .post("/orders")
            .token(&user.token)
            .json(json!({"items": [{"product_id": mug, "quantity": QUANTITY}]}));
        let deleting = shop
            .products
            .delete(&format!("/products/{mug}"))
            .token(&admin.token);
        let (order, deletion) = race(round, placing.send(), deleting.send()).await;
        let dangling: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM order_items i LEFT JOIN products p ON p.id = i.product_id
             WHERE i.product_id IS NOT NULL AND p.id IS NULL",
        )
        .fetch_one(shop.pool())
        .await
        .unwrap();
        let ok = code(&deletion) == 204 && matches!(code(&order), 201 | 400) && dangling == 0;
        let (o, d) = (code(&order), code(&deletion));
        expect(
            ok,
            format!("order {o}, deletion {d}, dangling lines {dangling}"),
        )
    })
    .await;
}

// ---- money records: no deletion, of an account or an order, ever loses a payment.

/// Runs three requests at once; which is polled first turns with the round, through all
/// six orders.
async fn race3<A, B, C>(
    round: usize,
    a: A,
    b: B,
    c: C,
) -> (TestResponse, TestResponse, TestResponse)
where
    A: std::future::Future<Output = TestResponse>,
    B: std::future::Future<Output = TestResponse>,
    C: std::future::Future<Output = TestResponse>,
{
    match round % 6 {
        0 => tokio::join!(a, b, c),
        1 => {
            let (a, c, b) = tokio::join!(a, c, b);
            (a, b, c)
        }
        2 => {
            let (b, a, c) = tokio::join!(b, a, c);
            (a, b, c)
        }
        3 => {
            let (b, c, a) = tokio::join!(b, c, a);
            (a, b, c)
        }
        4 => {
            let (c, a, b) = tokio::join!(c, a, b);
            (a, b, c)
        }
        _ => {
            let (c, b, a) = tokio::join!(c, b, a);
            (a, b, c)
        }
    }
}

/// A customer's pending order for `QUANTITY` × `PRICE` (15.00) with 5.00 already paid.
async fn partly_paid_order(shop: &Shop, product: u64) -> (TestUser, u64) {
    let (user, order) = shop.pending_order(product).await;
    shop.pay(&user, order, "5.00", None).await.expect(201);
    (user, order)
}

/// The payment that completes a partly paid order, against the deletion of the account:
/// either the order is paid and the account stays, or the order is cancelled with its
/// first payment refunded, and kept.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_racing_the_last_payment_keeps_every_payment(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × last payment", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = partly_paid_order(&shop, mug).await;
        let (account, payment) = race(
            round,
            shop.delete_account(&user),
            shop.pay(&user, order, "10.00", None),
        )
        .await;
        let end = shop.stock(mug).await;
        let (payments, completed) = (
            shop.payments_of(order).await,
            shop.completed_payments_of(order).await,
        );
        let ok = match (code(&account), code(&payment)) {
            (409, 201) => {
                end == start - i64::from(QUANTITY)
                    && shop.status(order).await.as_deref() == Some("paid")
                    && (payments, completed) == (2, 2)
            }
            (204, 401 | 404) => {
                end == start
                    && shop.cancelled_and_anonymised(order).await
                    && (payments, completed) == (1, 0)
            }
            _ => false,
        } && shop.money_adds_up().await.is_ok();
        let (a, p) = (code(&account), code(&payment));
        expect(
            ok,
            format!(
                "account {a}, payment {p}, stock {start} -> {end}, payments {payments} ({completed} completed)"
            ),
        )
    })
    .await;
}

/// A partly paid order cancelled and deleted at once: cancelled it is, its payment
/// refunded and kept, and the deletion refused whichever came first.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn cancel_racing_deletion_of_a_partly_paid_order_keeps_the_refund(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("cancel × deletion of a paid-into order", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = partly_paid_order(&shop, mug).await;
        let (cancel, removal) = race(
            round,
            shop.cancel(&user, order),
            shop.delete_order(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let (payments, completed) = (
            shop.payments_of(order).await,
            shop.completed_payments_of(order).await,
        );
        let ok = code(&cancel) == 200
            && code(&removal) == 409
            && removal.body["type"] == "/problems/order-has-payments"
            && end == start
            && shop.status(order).await.as_deref() == Some("cancelled")
            && (payments, completed) == (1, 0)
            && shop.money_adds_up().await.is_ok();
        let (c, r) = (code(&cancel), code(&removal));
        expect(
            ok,
            format!("cancel {c}, delete {r}, stock {start} -> {end}, payments {payments}"),
        )
    })
    .await;
}

/// Account deletion, the last payment and a cancel, all at once on a partly paid order.
/// Whatever the order of events: no payment is lost, money adds up, the stock is sold
/// exactly when the order ends paid, and the account goes exactly when it does not.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_payment_and_cancel_at_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × payment × cancel", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = partly_paid_order(&shop, mug).await;
        let (account, payment, cancel) = race3(
            round,
            shop.delete_account(&user),
            shop.pay(&user, order, "10.00", None),
            shop.cancel(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let status = shop.status(order).await;
        let (payments, completed) = (
            shop.payments_of(order).await,
            shop.completed_payments_of(order).await,
        );
        let paid = code(&payment) == 201;
        let ok = payments == 1 + i64::from(paid)
            && shop.money_adds_up().await.is_ok()
            && match status.as_deref() {
                // Paid first: the customer may not cancel it, the account may not go.
                Some("paid") => {
                    paid && code(&cancel) == 403
                        && code(&account) == 409
                        && completed == 2
                        && end == start - i64::from(QUANTITY)
                        && shop.user_exists(&user).await
                }
                // Cancelled, by the customer or by the deletion: nothing more is paid, the
                // first payment is refunded, the stock is back and the order kept.
                Some("cancelled") => {
                    !paid
                        && matches!(code(&payment), 401 | 404 | 409)
                        && matches!(code(&cancel), 200 | 401 | 404)
                        && code(&account) == 204
                        && completed == 0
                        && end == start
                        && shop.cancelled_and_anonymised(order).await
                        && !shop.user_exists(&user).await
                }
                _ => false,
            };
        let (a, p, c) = (code(&account), code(&payment), code(&cancel));
        expect(
            ok,
            format!(
                "account {a}, payment {p}, cancel {c}: {status:?}, stock {start} -> {end}, payments {payments} ({completed} completed)"
            ),
        )
    })
    .await;
}

/// Account deletion, order deletion and a payment in full, all at once on a pending order.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_order_deletion_and_payment_at_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × order deletion × payment", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, removal, payment) = race3(
            round,
            shop.delete_account(&user),
            shop.delete_order(&user, order),
            shop.pay_in_full(&user, order),
        )
        .await;
        let end = shop.stock(mug).await;
        let status = shop.status(order).await;
        let payments = shop.payments_of(order).await;
        let ok = shop.money_adds_up().await.is_ok()
            && match status.as_deref() {
                // Paid first: kept with its payment; neither deletion may happen.
                Some("paid") => {
                    code(&payment) == 201
                        && code(&removal) == 409
                        && code(&account) == 409
                        && payments == 1
                        && end == start - i64::from(QUANTITY)
                }
                // The account went first: the order was cancelled and kept.
                Some("cancelled") => {
                    code(&account) == 204
                        && matches!(code(&removal), 401 | 404)
                        && matches!(code(&payment), 401 | 404)
                        && payments == 0
                        && end == start
                        && shop.cancelled_and_anonymised(order).await
                }
                // The order was deleted first: no payment was ever made on it.
                None => {
                    code(&removal) == 204
                        && code(&account) == 204
                        && matches!(code(&payment), 401 | 404)
                        && payments == 0
                        && end == start
                }
                _ => false,
            };
        let (a, r, p) = (code(&account), code(&removal), code(&payment));
        expect(
            ok,
            format!("account {a}, delete {r}, payment {p}: {status:?}, stock {start} -> {end}, payments {payments}"),
        )
    })
    .await;
}

/// Account deletion, order deletion and a cancel at once: the stock comes back once.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn account_deletion_order_deletion_and_cancel_at_once(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds(
        "account deletion × order deletion × cancel",
        async |round| {
            let start = shop.stock(mug).await;
            let (user, order) = shop.pending_order(mug).await;
            let (account, removal, cancel) = race3(
                round,
                shop.delete_account(&user),
                shop.delete_order(&user, order),
                shop.cancel(&user, order),
            )
            .await;
            let end = shop.stock(mug).await;
            let kept = match shop.owner(order).await {
                None => code(&removal) == 204,
                Some(_) => shop.cancelled_and_anonymised(order).await,
            };
            let ok = code(&account) == 204
                && matches!(code(&removal), 204 | 401 | 404)
                && matches!(code(&cancel), 200 | 401 | 404)
                && kept
                && end == start;
            let (a, r, c) = (code(&account), code(&removal), code(&cancel));
            expect(
                ok,
                format!("account {a}, delete {r}, cancel {c}, stock {start} -> {end}"),
            )
        },
    )
    .await;
}

/// An idempotent payment whose account is deleted meanwhile: the key cannot be stored for
/// an account that no longer exists, and the answer says so (401/404), never 500.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_keyed_payment_racing_its_account_deletion_is_refused_cleanly(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × keyed payment", async |round| {
        let start = shop.stock(mug).await;
        let (user, order) = shop.pending_order(mug).await;
        let (account, payment) = race(
            round,
            shop.delete_account(&user),
            shop.pay(&user, order, "15.00", Some("pay-once")),
        )
        .await;
        let end = shop.stock(mug).await;
        let ok = match (code(&account), code(&payment)) {
            (409, 201) => end == start - i64::from(QUANTITY),
            (204, 401 | 404) => end == start && shop.cancelled_and_anonymised(order).await,
            _ => false,
        } && shop.money_adds_up().await.is_ok();
        let (a, p) = (code(&account), code(&payment));
        expect(
            ok,
            format!("account {a}, payment {p}, stock {start} -> {end}"),
        )
    })
    .await;
}

/// An idempotent order whose account is deleted meanwhile: placed before (then cancelled
/// by the deletion) or refused after (401/404), never 500, and no stock held either way.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_keyed_order_racing_its_account_deletion_is_refused_cleanly(pool: MySqlPool) {
    let shop = Shop::new(pool);
    let mug = shop.orders.product("Mug", PRICE, 10_000).await;
    rounds("account deletion × keyed order", async |round| {
        let start = shop.stock(mug).await;
        let user = shop.orders.customer().await;
        let placing = shop
            .orders
            .post("/orders")
            .token(&user.token)
            .header("idempotency-key", "order-once")
            .json(json!({"items": [{"product_id": mug, "quantity": QUANTITY}]}));
        let (account, order) = race(round, shop.delete_account(&user), placing.send()).await;
        let end = shop.stock(mug).await;
        let ok = code(&account) == 204
            && end == start
            && match code(&order) {
                201 => {
                    let id = order.body["id"].as_u64().unwrap();
                    shop.cancelled_and_anonymised(id).await
                }
                other => matches!(other, 401 | 404),
            };
        let (a, o) = (code(&account), code(&order));
        expect(
            ok,
            format!("account {a}, order {o}, stock {start} -> {end}"),
        )
    })
    .await;
}
