//! All functions' routes in one router: exactly the code each Lambda runs, merged, and the
//! plain HTTP host that serves it (`serve`).

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use web::state::AppState;

use crate::functions::FUNCTIONS;

pub fn router(state: AppState) -> Router {
    let routes = FUNCTIONS
        .iter()
        .fold(Router::new(), |routes, (_, function)| {
            routes.merge(function())
        });
    web::router::finish(routes, state)
}

/// Serves `router` on `listener` until the process ends. Each request carries its socket
/// peer, the client address that login throttling keys on here (on Lambda it is API
/// Gateway's `sourceIp`).
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
