//! Lambda entry point: state is built once per cold start, then every invocation is routed.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::http::init_tracing();
    let state = shared::AppState::from_env().await?;
    shared::http::run_lambda(reviews::router(state)).await
}
