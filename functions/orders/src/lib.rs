//! The `orders` function: placing orders, reading them, moving them through their statuses.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use shared::auth::AuthUser;
use shared::extract::{Id, Json, Path, Query};
use shared::idempotency::{self, Created, IdempotencyKey};
use shared::orders::{self, NewOrder, Order, OrderQuery, OrderSummary, StatusChange};
use shared::page::Page;
use shared::{ApiResult, AppState};

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{order_id}", get(show).put(update).delete(remove))
        .route("/users/{user_id}/orders", get(list_for_user))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    key: IdempotencyKey,
    Json(input): Json<NewOrder>,
) -> ApiResult<Response> {
    let user_id = caller.acting_for(input.user_id)?;
    if user_id != caller.id {
        orders::require_user(&state.pool, user_id).await?;
    }
    let lines = orders::merge(&input.items);
    let hold = state.order_hold;
    let stored = idempotency::run_once(
        &state.pool,
        caller.id,
        key,
        "POST /orders",
        &input,
        move |tx| {
            let lines = lines.clone();
            Box::pin(async move {
                let id = orders::create_in(tx, user_id, &lines, hold).await?;
                Ok(Created {
                    location: format!("/orders/{id}"),
                    body: orders::get(tx, id).await?,
                })
            })
        },
    )
    .await?;
    Ok(axum::response::IntoResponse::into_response(stored))
}

async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Order>> {
    Ok(axum::Json(
        orders::get_for(&state.pool, &caller, id.0).await?,
    ))
}

async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Id>,
    Json(change): Json<StatusChange>,
) -> ApiResult<axum::Json<Order>> {
    Ok(axum::Json(
        orders::set_status(&state.pool, caller, id.0, change.status).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    orders::delete(&state.pool, caller, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_for_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(user_id): Path<Id>,
    Query(query): Query<OrderQuery>,
) -> ApiResult<axum::Json<Page<OrderSummary>>> {
    caller.require_self_or_admin(user_id.0)?;
    orders::require_existing_user(&state.pool, user_id.0).await?;
    Ok(axum::Json(
        orders::list_for_user(&state.pool, user_id.0, &query).await?,
    ))
}
