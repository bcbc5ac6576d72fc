//! All functions' routes in one router: exactly the code each Lambda runs, merged.

use axum::Router;
use axum::routing::get;
use shared::AppState;

/// The OpenAPI description of the whole API, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../openapi.json");

pub fn router(state: AppState) -> Router {
    shared::password::warm_up();
    let routes = Router::new()
        .merge(products::routes())
        .merge(categories::routes())
        .merge(users::routes())
        .merge(cart::routes())
        .merge(orders::routes())
        .merge(payments::routes())
        .merge(reviews::routes())
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    OPENAPI,
                )
            }),
        );
    shared::http::finish(routes, state)
}
