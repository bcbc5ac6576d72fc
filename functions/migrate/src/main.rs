//! Lambda entry point. The database configuration is read on first use rather than at
//! start-up, so that a configuration error still reaches CloudFormation as FAILED instead
//! of leaving the stack waiting, and a Delete needs no configuration at all.

// The runtime's future wraps sqlx's migrator and reqwest's client: deeper than the default.
#![recursion_limit = "256"]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// Kept back from the invocation's deadline to deliver the response to CloudFormation.
const RESPONSE_RESERVE: Duration = Duration::from_secs(20);
/// For a deadline that has already passed, which only an emulator sends (`cargo lambda
/// watch` sends a fixed 600000), so that `cargo lambda invoke migrate` works locally.
const EMULATOR_BUDGET: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let http = migrate::http_client()?;
    let database = migrate::ConfiguredPool::default();
    let (http, database) = (&http, &database);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let budget = budget(event.context.deadline);
        migrate::handle(event.payload, database, http, budget).await
    }))
    .await
}

/// How long the migrations may take: Lambda gives the deadline in milliseconds since the
/// Unix epoch.
fn budget(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    match Duration::from_millis(deadline_ms).checked_sub(now) {
        Some(left) => left.saturating_sub(RESPONSE_RESERVE),
        None => EMULATOR_BUDGET,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_ms(from_now: Duration) -> u64 {
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + from_now;
        at.as_millis() as u64
    }

    #[test]
    fn the_budget_leaves_time_to_answer() {
        let budget = budget(in_ms(Duration::from_secs(300)));
        assert!(budget <= Duration::from_secs(280) && budget > Duration::from_secs(275));
        assert_eq!(super::budget(in_ms(Duration::from_secs(5))), Duration::ZERO);
    }

    #[test]
    fn a_deadline_in_the_past_gets_the_emulator_budget() {
        assert_eq!(budget(600_000), EMULATOR_BUDGET);
    }
}
