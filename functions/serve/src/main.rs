//! `serve`: the whole API on one port (`PORT`, default 8080), configured like the functions.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::http::init_tracing();
    let state = shared::AppState::from_env().await?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, serve::router(state)).await?;
    Ok(())
}
