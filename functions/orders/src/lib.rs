//! The `orders` function: placing orders, reading them, moving them through their statuses.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use domain::id::Id;
use domain::orders::{self, NewOrder, Order, OrderQuery, OrderSummary, StatusChange};
use domain::page::Page;
use web::auth::AuthUser;
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::idempotency::{self, IdempotencyKey, Parties};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{order_id}", get(show).put(update).delete(remove))
        .route("/users/{user_id}/orders", get(list_for_user))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    key: IdempotencyKey,
    Json(input): Json<NewOrder>,
) -> ApiResult<Response> {
    let owner = caller.acting_for(input.user_id.map(Id::get))?;
    let lines = orders::merge(&input.items);
    let shipping = input.shipping();
    let limits = state.order_limits();
    let parties = Parties {
        caller: caller.id,
        owner: Some(owner),
    };
    idempotency::create_once(
        &state.pool,
        parties,
        key,
        "POST /orders",
        &input,
        move |tx| {
            let (lines, shipping) = (lines.clone(), shipping.clone());
            Box::pin(async move {
                Ok(orders::place(tx, &caller, owner, &lines, &shipping, limits).await?)
            })
        },
    )
    .await
}

async fn show(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Order>> {
    Ok(axum::Json(
        orders::get_for(&state.pool, &caller, id.0).await?,
    ))
}

async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<Id>,
    Json(change): Json<StatusChange>,
) -> ApiResult<axum::Json<Order>> {
    Ok(axum::Json(
        orders::set_status(&state.pool, caller, id.0, change).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    orders::delete(&state.pool, caller, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_for_user(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(user_id): Path<Id>,
    Query(query): Query<OrderQuery>,
) -> ApiResult<axum::Json<Page<OrderSummary>>> {
    caller.require_self_or_admin(user_id.0)?;
    domain::users::require_existing_user(&state.pool, user_id.0).await?;
    Ok(axum::Json(
        orders::list_for_user(&state.pool, user_id.0, &query).await?,
    ))
}
