//! Lambda entry point. The database configuration is read on first use rather than at
//! start-up, so that a configuration error still reaches CloudFormation as FAILED instead
//! of leaving the stack waiting, and a Delete needs no configuration at all.

// The runtime's future wraps sqlx's migrator and reqwest's client: deeper than the default.
#![recursion_limit = "256"]

use std::time::Duration;

use platform::deadline::budget;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// Kept back from the invocation's deadline to deliver the response to CloudFormation.
const RESPONSE_RESERVE: Duration = Duration::from_secs(20);
/// For a deadline that has already passed, which only an emulator sends (`cargo lambda
/// watch` sends a fixed 600000), so that `cargo lambda invoke migrate` works locally.
const EMULATOR_BUDGET: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let http = migrate::http_client()?;
    let database = migrate::ConfiguredPool::default();
    let (http, database) = (&http, &database);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let budget = budget(event.context.deadline, RESPONSE_RESERVE, EMULATOR_BUDGET);
        migrate::handle(event.payload, database, http, budget).await
    }))
    .await
}
