//! Wakes the webhook relay when a request has written events, so that a webhook leaves
//! within seconds of its change instead of at the relay's next scheduled minute.
//!
//! Why the writer, not a poll: a relay polling the outbox every second would query the
//! database all the time, and an Aurora Serverless cluster that is queried never pauses.
//! The writer knows when there is something to send; one SQS message to the relay's
//! wake-up queue (`RELAY_WAKE_QUEUE_URL`) starts a relay run through its event source
//! mapping, which Lambda polls without touching the database. Unset (locally), nothing is
//! sent: the local worker runs every second.
//!
//! Why not one message per write: each message is an SQS request ($0.40 per million), a
//! relay invocation and its look at the outbox, and a round trip to SQS inside the
//! request's billed duration. A busy instance therefore paces its wake-ups ([`Pacing`]):
//! at most one immediate and one delayed message per [`COVER`], whatever its rate.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use platform::queue::SqsQueue;

static WAKE: OnceLock<SqsQueue> = OnceLock::new();
static PACING: Mutex<Pacing> = Mutex::new(Pacing::new());

/// How long a delayed wake-up stays invisible to the relay's event source.
pub const COVER: Duration = Duration::from_secs(1);

/// The wake-up queue named by `RELAY_WAKE_QUEUE_URL`, if any, once per cold start.
pub async fn init_from_env() {
    if let Ok(url) = std::env::var("RELAY_WAKE_QUEUE_URL") {
        install(SqsQueue::from_env(url).await);
    }
}

/// Makes `queue` the process's wake-up queue; later calls keep the first.
pub fn install(queue: SqsQueue) {
    let _ = WAKE.set(queue);
}

/// After the response is ready (its transaction committed), a wake-up if the request wrote
/// events and no message already sent will start a relay run that sees them. A failed send
/// is logged, never the request's failure: the relay's schedule sends the events within
/// the minute anyway.
pub async fn wake_relay(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if domain::events::take_written()
        && let Some(queue) = WAKE.get()
    {
        let now = Instant::now();
        let wake = lock(&PACING).wake(now);
        let sent = match wake {
            Wake::Covered => return response,
            Wake::Now => queue.send_delayed("{}", Duration::ZERO).await,
            Wake::Delayed => queue.send_delayed("{}", COVER).await,
        };
        match sent {
            Ok(()) => lock(&PACING).sent(wake, now),
            Err(err) => tracing::warn!(error = %err, "waking the webhook relay failed"),
        }
    }
    response
}

/// A poisoned lock only means another request panicked while deciding; the times it holds
/// are still times.
fn lock(pacing: &Mutex<Pacing>) -> std::sync::MutexGuard<'_, Pacing> {
    pacing
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a request that has committed events needs to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A message the relay may take at once: nothing sent lately.
    Now,
    /// A message the relay sees only after [`COVER`]: one was sent lately, and the run it
    /// started may have read the outbox before this request committed.
    Delayed,
    /// Nothing: a delayed message already sent becomes visible after this commit, so the
    /// run it starts reads these events.
    Covered,
}

/// This process's recent wake-ups. The rule that makes skipping safe: a message sent with
/// a delay at `t` cannot start a relay run before `t + COVER` (SQS counts the delay from
/// when it receives the message, which is after `t`), and that run reads every event
/// committed before it starts; so a request whose events were committed before
/// `t + COVER` is covered by it. An immediate message covers nothing after its own send.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    last_now: Option<Instant>,
    covered_until: Option<Instant>,
}

impl Pacing {
    pub const fn new() -> Self {
        Self {
            last_now: None,
            covered_until: None,
        }
    }

    /// What a request whose events were committed by `now` needs. A write wakes the relay
    /// at once unless an immediate message went out within the last [`COVER`], so a lone
    /// change leaves without delay.
    pub fn wake(&self, now: Instant) -> Wake {
        if self.covered_until.is_some_and(|until| now < until) {
            Wake::Covered
        } else if self.last_now.is_some_and(|at| now < at + COVER) {
            Wake::Delayed
        } else {
            Wake::Now
        }
    }

    /// Records that `wake`, decided at `at`, was sent. Only a message that SQS took
    /// covers anything.
    pub fn sent(&mut self, wake: Wake, at: Instant) {
        match wake {
            Wake::Now => self.last_now = Some(at),
            Wake::Delayed => self.covered_until = Some(at + COVER),
            Wake::Covered => {}
        }
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    /// Sends what `pacing` asks for at each time (milliseconds after `start`), as the
    /// middleware does when every send succeeds; returns the decisions.
    fn run(pacing: &mut Pacing, start: Instant, times: &[u64]) -> Vec<Wake> {
        times
            .iter()
            .map(|&ms| {
                let wake = pacing.wake(after(start, ms));
                pacing.sent(wake, after(start, ms));
                wake
            })
            .collect()
    }

    #[test]
    fn a_lone_write_wakes_the_relay_at_once() {
        let start = Instant::now();
        let mut pacing = Pacing::new();
        assert_eq!(run(&mut pacing, start, &[0]), [Wake::Now]);
        // Another lone write after a quiet second is again at once.
        assert_eq!(run(&mut pacing, start, &[1_000, 5_000]), [Wake::Now; 2]);
    }

    #[test]
    fn a_burst_sends_one_message_now_and_one_delayed() {
        let start = Instant::now();
        let mut pacing = Pacing::new();
        let wakes = run(&mut pacing, start, &[0, 10, 20, 500, 1_009]);
        use Wake::*;
        assert_eq!(wakes, [Now, Delayed, Covered, Covered, Covered]);
        // The delayed message sent at 10 ms covers commits before 1,010 ms, not at it.
        assert_eq!(pacing.wake(after(start, 1_010)), Now);
    }

    #[test]
    fn a_steady_stream_sends_two_messages_a_second() {
        let start = Instant::now();
        let mut pacing = Pacing::new();
        // A write every millisecond for ten seconds.
        let times: Vec<u64> = (0..10_000).collect();
        let wakes = run(&mut pacing, start, &times);
        let sent = wakes.iter().filter(|w| **w != Wake::Covered).count();
        assert!(
            (18..=22).contains(&sent),
            "{sent} messages for 10,000 writes"
        );
        // No write is left uncovered: each is either sent for or before a delayed
        // message's cover runs out.
        let mut covered_until = None;
        for (&ms, wake) in times.iter().zip(&wakes) {
            let at = after(start, ms);
            match wake {
                Wake::Covered => assert!(covered_until.is_some_and(|until| at < until)),
                Wake::Delayed => covered_until = Some(at + COVER),
                Wake::Now => {}
            }
        }
    }

    #[test]
    fn a_failed_send_covers_nothing() {
        let start = Instant::now();
        let mut pacing = Pacing::new();
        assert_eq!(pacing.wake(start), Wake::Now);
        // Not recorded as sent: the next write asks again, at once.
        assert_eq!(pacing.wake(after(start, 5)), Wake::Now);
        pacing.sent(Wake::Now, after(start, 5));
        assert_eq!(pacing.wake(after(start, 6)), Wake::Delayed);
        assert_eq!(pacing.wake(after(start, 7)), Wake::Delayed);
    }
}
