//! `webhook-worker`: under `make run`, what the relay and delivery functions do on AWS,
//! against the local database: the same relay and delivery code on a timer, with an
//! in-process queue instead of SQS. Configured like the functions (`DATABASE_URL`,
//! `WEBHOOK_KEY`, `WEBHOOK_ALLOW_LOOPBACK`, `WEBHOOK_TIMEOUT_SECONDS`). Killing it loses
//! nothing: a delivery it held comes back to the next worker when its lease runs out.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    web::lambda::init_tracing();
    let state = web::state::AppState::from_env().await?;
    let hooks = events::Hooks::from_env().await?;
    domain::webhooks::worker::run(
        hooks.deliverer(state.pool.clone(), domain::webhooks::worker::settings()),
        domain::webhooks::worker::EVERY,
    )
    .await;
    Ok(())
}
