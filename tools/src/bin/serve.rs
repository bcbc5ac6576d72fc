//! `serve`: the whole API on one port, configured like the functions. Listens on `HOST`
//! (default 127.0.0.1: the local signing key and admin password are published, so the
//! API is not offered to the network unless asked) and `PORT` (default 8080).

use std::net::IpAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    web::lambda::init_tracing();
    let state = web::state::AppState::from_env().await?;
    let hooks = events::Hooks::from_env().await?;
    events::Hooks::install(hooks.clone());
    // Webhooks, as the relay and delivery functions send them on AWS: the same code on a
    // timer, with an in-process queue.
    let deliverer = hooks.deliverer(state.pool.clone(), domain::webhooks::worker::settings());
    tokio::spawn(domain::webhooks::worker::run(
        deliverer,
        domain::webhooks::worker::EVERY,
    ));
    let host: IpAddr = match std::env::var("HOST") {
        Ok(host) => host
            .parse()
            .map_err(|_| format!("HOST={host} is not an IP address"))?,
        Err(_) => IpAddr::from([127, 0, 0, 1]),
    };
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port} is not a port number"))?,
        Err(_) => 8080,
    };
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    tools::serve::serve(listener, tools::serve::router(state)).await?;
    Ok(())
}
