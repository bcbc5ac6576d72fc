//! Webhooks as `make run` and `make serve` send them, end to end: the real functions'
//! routers write the changes and create the endpoints, the real `webhook-worker` binary
//! (the relay and delivery code on a timer, local queue) sends them to receivers on
//! loopback, and each request's Standard Webhooks signature is checked here with an
//! independent HMAC.

#[path = "../../shared/platform/tests/support/receiver.rs"]
mod receiver;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use platform::config::Secret;
use platform::crypto::SealingKey;
use platform::outbound::{Outbound, Policy};
use receiver::{Receiver, Reply, Request};
use serde_json::{Value, json};
use sqlx::MySqlPool;
use testkit::{TestApp, TestUser};
use tokio::process::{Child, Command};

const WEBHOOK_KEY: &str = "test-only-webhook-sealing-key-0123456789";
/// The contract's promise under `make run`.
const PROMPT: Duration = Duration::from_secs(5);

fn verifies(secret: &str, request: &Request) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let (Some(id), Some(timestamp), Some(signature)) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
    ) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    signature == format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// The test database's URL, for the worker process.
async fn database_url(pool: &MySqlPool) -> String {
    let name: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .unwrap();
    let registry = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (base, query) = match registry.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (registry.as_str(), String::new()),
    };
    format!("{}/{name}{query}", base.rsplit_once('/').unwrap().0)
}

/// The worker as `make run` starts it, with a 1 s receiver timeout.
async fn start_worker(pool: &MySqlPool) -> Child {
    Command::new(env!("CARGO_BIN_EXE_webhook-worker"))
        .env("DATABASE_URL", database_url(pool).await)
        .env("JWT_SECRET", testkit::JWT_SECRET)
        .env("WEBHOOK_KEY", WEBHOOK_KEY)
        .env("WEBHOOK_ALLOW_LOOPBACK", "true")
        .env("WEBHOOK_TIMEOUT_SECONDS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start webhook-worker")
}

struct Shop {
    events: TestApp,
    orders: TestApp,
    admin: TestUser,
}

impl Shop {
    async fn new(pool: MySqlPool) -> Shop {
        events::Hooks::install(events::Hooks {
            sealing: Arc::new(SealingKey::from_secret(&Secret::new(WEBHOOK_KEY)).unwrap()),
            outbound: Arc::new(Outbound::new(Policy {
                allow_loopback: true,
                ..Policy::default()
            })),
        });
        let events = TestApp::new(pool.clone(), events::router);
        let admin = events.admin().await;
        Shop {
            events,
            orders: TestApp::new(pool, orders::router),
            admin,
        }
    }

    /// An endpoint for `receiver`, through the API: its id and secret.
    async fn endpoint(&self, receiver: &Receiver) -> (u64, String) {
        let created = self
            .events
            .post("/webhook-endpoints")
            .token(&self.admin.token)
            .json(json!({"url": receiver.url(), "events": ["order.created"]}))
            .send()
            .await;
        let body = created.expect(201);
        (
            body["id"].as_u64().unwrap(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    async fn place(&self, buyer: &TestUser, product: u64) -> u64 {
        self.orders
            .post("/orders")
            .token(&buyer.token)
            .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
            .send()
            .await
            .expect(201)["id"]
            .as_u64()
            .unwrap()
    }

    async fn deliveries(&self, endpoint: u64) -> Vec<Value> {
        let listed = self
            .events
            .get(&format!("/webhook-endpoints/{endpoint}/deliveries"))
            .token(&self.admin.token)
            .send()
            .await;
        listed.expect(200)["items"].as_array().unwrap().clone()
    }
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn orders_reach_loopback_receivers_signed_promptly_and_survive_failures(pool: MySqlPool) {
    let shop = Shop::new(pool.clone()).await;
    let good = Receiver::start(Reply::Status(204)).await;
    let flaky = Receiver::start(Reply::Status(200)).await;
    flaky.script([Reply::Status(503)]);
    let silent = Receiver::start(Reply::Hang).await;
    let (_, good_secret) = shop.endpoint(&good).await;
    let (flaky_id, flaky_secret) = shop.endpoint(&flaky).await;
    let (silent_id, _) = shop.endpoint(&silent).await;
    let mut worker = start_worker(&pool).await;

    let buyer = shop.orders.customer().await;
    let mug = shop.orders.product("Mug", "5.00", 100).await;
    let committed = Instant::now();
    let order = shop.place(&buyer, mug).await;
    let arrived = good.wait_for(1, PROMPT).await;
    let latency = committed.elapsed();
    eprintln!("make run: commit to loopback receiver in {latency:?}");
    assert!(latency < PROMPT, "{latency:?}");
    let first = &arrived[0];
    assert!(verifies(&good_secret, first), "{:?}", first.headers);
    assert_eq!(first.method, "POST");
    let event = body(first);
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["data"]["id"], order);
    assert_eq!(
        first.header("webhook-id"),
        Some(event["id"].to_string().as_str())
    );

    // The flaky receiver refused once, then takes the same event under the same id after
    // the first retry (5 s ±20 %), signed again.
    let tried = flaky.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(tried[0].header("webhook-id"), tried[1].header("webhook-id"));
    assert!(tried.iter().all(|r| verifies(&flaky_secret, r)));
    let waited = tried[1].at - tried[0].at;
    assert!(waited >= Duration::from_secs(4), "{waited:?}");

    // The silent one: its attempt timed out and was recorded, and held up no one.
    let started = Instant::now();
    let attempts = loop {
        let delivery = shop.deliveries(silent_id).await.remove(0);
        let attempts = delivery["attempts"].as_array().unwrap().clone();
        if !attempts.is_empty() {
            assert_eq!(delivery["status"], "pending");
            assert!(!delivery["next_attempt_at"].is_null());
            break attempts;
        }
        assert!(started.elapsed() < PROMPT, "{delivery}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attempts[0]["status_code"], Value::Null);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s"),
        "{attempts:?}"
    );
    let flaky_delivery = shop.deliveries(flaky_id).await.remove(0);
    assert_eq!(flaky_delivery["status"], "succeeded");
    assert_eq!(flaky_delivery["attempts"].as_array().unwrap().len(), 2);

    // Killed while an attempt hangs, with events committed while it is down: started
    // again, it sends every one of them; nothing is lost. A delivery handed to the dead
    // process's queue comes back when its lease (10 s locally) runs out.
    let silent_before = silent.requests().len();
    shop.place(&buyer, mug).await;
    silent
        .wait_for(silent_before + 1, Duration::from_secs(10))
        .await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    for _ in 0..3 {
        shop.place(&buyer, mug).await;
    }
    let _restarted = start_worker(&pool).await;
    // At least once: an event handed out just before the kill may come twice, under the
    // same webhook-id; every one of the five comes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ids = loop {
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        for request in good.requests() {
            assert!(verifies(&good_secret, &request));
            *ids.entry(request.header("webhook-id").unwrap().to_string())
                .or_default() += 1;
        }
        if ids.len() >= 5 || Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ids.len(), 5, "{ids:?}");
    // The silent endpoint's deliveries wait for their lease or retry, none lost.
    let silent_deliveries = shop.deliveries(silent_id).await;
    assert_eq!(silent_deliveries.len(), 5);
    assert!(silent_deliveries.iter().all(|d| d["status"] == "pending"));
}
