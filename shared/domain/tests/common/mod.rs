//! What the event and webhook tests share: a receiver on loopback, an independent check of
//! Standard Webhooks signatures, and the relay and delivery step driven by hand.

#![allow(dead_code)]

#[path = "../../../platform/tests/support/receiver.rs"]
pub mod receiver;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::events::{self, EventType};
use domain::webhooks::delivery::{Deliverer, Handled};
use domain::webhooks::endpoints::{self, CreatedEndpoint, NewEndpoint, Subscription};
use domain::webhooks::relay::{self, RelayReport};
use domain::webhooks::schedule::Settings;
use hmac::{Hmac, Mac};
use platform::config::Secret;
use platform::crypto::SealingKey;
use platform::outbound::{Outbound, Policy};
use platform::queue::LocalQueue;
use receiver::Request;
use serde_json::{Value, json};
use sqlx::MySqlPool;
use tokio::sync::mpsc::UnboundedReceiver;

pub const WEBHOOK_KEY: &str = "test-only-webhook-sealing-key-0123456789";

pub fn sealing() -> Arc<SealingKey> {
    Arc::new(SealingKey::from_secret(&Secret::new(WEBHOOK_KEY)).unwrap())
}

/// The local policy (loopback receivers allowed), with a short timeout.
pub fn local_outbound(timeout: Duration) -> Outbound {
    Outbound::new(Policy {
        allow_loopback: true,
        timeout,
    })
}

/// The contract's schedule shrunk to milliseconds, with short leases.
pub fn fast_settings() -> Settings {
    Settings {
        retry_delays: vec![Duration::from_millis(50); 7],
        jitter_permille: 0,
        min_retry_span: Duration::ZERO,
        queue_lease: Duration::from_millis(500),
        attempt_margin: Duration::from_millis(500),
        ..Settings::default()
    }
}

pub fn deliverer(pool: &MySqlPool, settings: Settings, timeout: Duration) -> Deliverer {
    Deliverer {
        pool: pool.clone(),
        outbound: local_outbound(timeout),
        sealing: sealing(),
        settings: Arc::new(settings),
    }
}

/// An endpoint for `url`, subscribed to `events` (type names or `*`).
pub async fn endpoint(d: &Deliverer, url: &str, events: &[&str]) -> CreatedEndpoint {
    let events: Vec<Subscription> =
        serde_json::from_value(json!(events)).expect("known event types");
    endpoints::create(
        &d.pool,
        &d.outbound,
        &d.sealing,
        NewEndpoint {
            url: url.to_string(),
            events,
            description: None,
        },
    )
    .await
    .unwrap()
}

/// Commits one transaction that records `kind` with `data`.
pub async fn emit(pool: &MySqlPool, kind: EventType, data: Value) {
    let mut tx = pool.begin().await.unwrap();
    events::record(&mut tx, kind, &data).await.unwrap();
    tx.commit().await.unwrap();
}

/// Checks a request's Standard Webhooks signature with RustCrypto's HMAC, not the code
/// that signed it.
pub fn verifies(secret: &str, request: &Request) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
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
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    signature == expected
}

pub fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// The relay and the delivery step, run by hand over the in-process queue.
pub struct Pipeline {
    pub deliverer: Deliverer,
    pub queue: LocalQueue,
    pub messages: UnboundedReceiver<String>,
}

impl Pipeline {
    pub fn new(deliverer: Deliverer) -> Self {
        let (queue, messages) = LocalQueue::channel();
        Self {
            deliverer,
            queue,
            messages,
        }
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.deliverer.pool
    }

    pub async fn relay(&self) -> RelayReport {
        relay::step(&self.deliverer.pool, &self.queue, &self.deliverer.settings)
            .await
            .unwrap()
    }

    /// The messages waiting in the queue.
    pub fn take_messages(&mut self) -> Vec<String> {
        let mut taken = Vec::new();
        while let Ok(message) = self.messages.try_recv() {
            taken.push(message);
        }
        taken
    }

    /// One relay run, then every message it queued, handled at once.
    pub async fn pump(&mut self) -> Vec<Handled> {
        self.relay().await;
        self.deliver_queued().await
    }

    /// Handles every message waiting in the queue, at once.
    pub async fn deliver_queued(&mut self) -> Vec<Handled> {
        let messages = self.take_messages();
        let mut handled = Vec::new();
        let tasks: Vec<_> = messages
            .into_iter()
            .map(|m| {
                let d = self.deliverer.clone();
                tokio::spawn(async move { d.handle(&m).await.unwrap() })
            })
            .collect();
        for task in tasks {
            handled.push(task.await.unwrap());
        }
        handled
    }
}

/// `(status, attempts' status codes, next_attempt_at is set)` of every delivery of an
/// endpoint, oldest first.
pub async fn deliveries_of(
    pool: &MySqlPool,
    endpoint: u64,
) -> Vec<domain::webhooks::deliveries::Delivery> {
    let query = domain::webhooks::deliveries::DeliveryQuery {
        limit: serde_json::from_value(json!(100)).unwrap(),
        cursor: None,
    };
    let mut items = domain::webhooks::deliveries::list(pool, endpoint, &query)
        .await
        .unwrap()
        .items;
    items.reverse();
    items
}
