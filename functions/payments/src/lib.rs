//! The `payments` function: paying orders and reading payments.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shared::auth::AuthUser;
use shared::extract::{Id, Json, Path, Query};
use shared::idempotency::{self, Created, IdempotencyKey};
use shared::page::Page;
use shared::payments::{self, NewPayment, Payment, PaymentQuery};
use shared::{ApiResult, AppState};

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/payments", post(create))
        .route("/payments/{payment_id}", get(show))
        .route("/orders/{order_id}/payments", get(list_for_order))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    shared::http::finish(routes(), state)
}

async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    key: IdempotencyKey,
    Json(input): Json<NewPayment>,
) -> ApiResult<Response> {
    // An order whose stock hold has run out is cancelled before anything is paid on it.
    shared::orders::settle(&state.pool, input.order_id).await?;
    let request = input.clone();
    let stored = idempotency::run_once(
        &state.pool,
        caller.id,
        key,
        "POST /payments",
        &request,
        move |tx| {
            let input = input.clone();
            Box::pin(async move {
                let id = payments::create_in(tx, &caller, &input).await?;
                Ok(Created {
                    location: format!("/payments/{id}"),
                    body: payments::get(tx, id).await?,
                })
            })
        },
    )
    .await?;
    Ok(stored.into_response())
}

async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Payment>> {
    Ok(axum::Json(
        payments::get_for(&state.pool, &caller, id.0).await?,
    ))
}

async fn list_for_order(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(order_id): Path<Id>,
    Query(query): Query<PaymentQuery>,
) -> ApiResult<axum::Json<Page<Payment>>> {
    Ok(axum::Json(
        payments::list_for_order(&state.pool, &caller, order_id.0, &query).await?,
    ))
}
