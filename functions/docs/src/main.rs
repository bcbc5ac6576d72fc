//! Lambda entry point. No database and no secrets: the page is the same for everyone.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    web::lambda::init_tracing();
    web::lambda::run_lambda(docs::router()).await
}
