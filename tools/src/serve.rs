//! All functions' routes in one router: exactly the code each Lambda runs, merged.

use axum::Router;
use web::state::AppState;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(products::routes())
        .merge(categories::routes())
        .merge(users::routes())
        .merge(cart::routes())
        .merge(orders::routes())
        .merge(payments::routes())
        .merge(reviews::routes())
        .merge(docs::routes());
    web::router::finish(routes, state)
}
