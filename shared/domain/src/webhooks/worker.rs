//! The local worker (`make run`, `make serve`): the same relay and delivery step as on AWS,
//! on a timer against the local database, with an in-process queue instead of SQS. An
//! event reaches its receivers about one period (a second) after its commit.

use std::time::Duration;

use platform::queue::LocalQueue;
use tokio::task::JoinSet;

use crate::webhooks::delivery::Deliverer;
use crate::webhooks::relay;
use crate::webhooks::schedule::Settings;

/// How often the local relay runs.
pub const EVERY: Duration = Duration::from_secs(1);
/// Deliveries attempted at once (one per endpoint at most).
pub const CONCURRENCY: usize = 16;

/// The contract's schedule, with leases sized for the in-process queue: its messages die
/// with the process, so a delivery handed out just before a kill comes back seconds later,
/// not after the minutes an SQS message may wait.
pub fn settings() -> Settings {
    Settings {
        queue_lease: Duration::from_secs(10),
        attempt_margin: Duration::from_secs(5),
        ..Settings::default()
    }
}

/// Runs until dropped or aborted; dropping it stops the attempts in flight too (their
/// leases run out and the next worker picks them up). Errors are logged, never fatal: the
/// database may come and go while a developer works.
pub async fn run(deliverer: Deliverer, every: Duration) {
    let (queue, mut messages) = LocalQueue::channel();
    let relay_deliverer = deliverer.clone();
    let relay = async move {
        loop {
            let d = &relay_deliverer;
            if let Err(err) = relay::step(&d.pool, &queue, &d.settings).await {
                tracing::warn!(error = %err, "webhook relay run failed");
            }
            tokio::time::sleep(every).await;
        }
    };
    let deliver = async move {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                Some(body) = messages.recv(), if tasks.len() < CONCURRENCY => {
                    let d = deliverer.clone();
                    tasks.spawn(async move {
                        if let Err(err) = d.handle(&body).await {
                            tracing::warn!(error = %err, "webhook delivery failed");
                        }
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                else => break,
            }
        }
    };
    tokio::join!(relay, deliver);
}
