//! Lambda entry point: state is built once per cold start, then every invocation is routed.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    web::lambda::init_tracing();
    let state = web::state::AppState::from_env().await?;
    web::lambda::run_lambda(categories::router(state)).await
}
