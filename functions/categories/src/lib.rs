//! The `categories` function: the category tree's HTTP routes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use domain::categories::{self, Category, CategoryPatch, CategoryQuery, NewCategory};
use domain::id::Id;
use domain::page::Page;
use web::auth::Admin;
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/categories", get(list).post(create))
        .route(
            "/categories/{category_id}",
            get(show).put(update).delete(remove),
        )
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn list(
    State(state): State<AppState>,
    Query(query): Query<CategoryQuery>,
) -> ApiResult<axum::Json<Page<Category>>> {
    Ok(axum::Json(categories::list(&state.pool, &query).await?))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Category>> {
    Ok(axum::Json(categories::get(&state.pool, id.0).await?))
}

async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    Json(input): Json<NewCategory>,
) -> ApiResult<impl IntoResponse> {
    let category = categories::create(&state.pool, input).await?;
    Ok(web::router::created(
        format!("/categories/{}", category.id),
        category,
    ))
}

async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
    Json(patch): Json<CategoryPatch>,
) -> ApiResult<axum::Json<Category>> {
    Ok(axum::Json(
        categories::update(&state.pool, id.0, patch).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    categories::delete(&state.pool, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
