//! The `reviews` function: product reviews.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use domain::id::Id;
use domain::page::Page;
use domain::reviews::{self, NewReview, Review, ReviewQuery};
use web::auth::AuthUser;
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/products/{product_id}/reviews", get(list).post(create))
        .route("/reviews/{review_id}", get(show).delete(remove))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn list(
    State(state): State<AppState>,
    Path(product_id): Path<Id>,
    Query(query): Query<ReviewQuery>,
) -> ApiResult<axum::Json<Page<Review>>> {
    Ok(axum::Json(
        reviews::list(&state.pool, product_id.0, &query).await?,
    ))
}

async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(product_id): Path<Id>,
    Json(input): Json<NewReview>,
) -> ApiResult<Response> {
    let review = reviews::create(&state.pool, caller, product_id.0, input).await?;
    Ok(web::router::created(
        format!("/reviews/{}", review.id),
        review,
    ))
}

async fn show(State(state): State<AppState>, Path(id): Path<Id>) -> ApiResult<axum::Json<Review>> {
    Ok(axum::Json(reviews::get(&state.pool, id.0).await?))
}

async fn remove(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    reviews::delete(&state.pool, caller, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
