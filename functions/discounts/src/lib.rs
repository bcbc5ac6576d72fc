//! The `discounts` function: the admin's discount codes. Codes are used at `POST /orders`
//! and checkout, in the `orders` and `cart` functions.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use domain::discounts::{self, Discount, DiscountPatch, DiscountQuery, NewDiscount};
use domain::id::Id;
use domain::page::Page;
use web::auth::Admin;
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/discounts", get(list).post(create))
        .route(
            "/discounts/{discount_id}",
            get(show).put(update).delete(remove),
        )
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<DiscountQuery>,
) -> ApiResult<axum::Json<Page<Discount>>> {
    Ok(axum::Json(discounts::list(&state.pool, &query).await?))
}

async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Discount>> {
    Ok(axum::Json(discounts::get(&state.pool, id.0).await?))
}

async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    Json(input): Json<NewDiscount>,
) -> ApiResult<impl IntoResponse> {
    let discount = discounts::create(&state.pool, input).await?;
    Ok(web::router::created(
        format!("/discounts/{}", discount.id),
        discount,
    ))
}

async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
    Json(patch): Json<DiscountPatch>,
) -> ApiResult<axum::Json<Discount>> {
    Ok(axum::Json(
        discounts::update(&state.pool, id.0, patch).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    discounts::delete(&state.pool, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
