//! The `payments` function: paying orders and reading payments.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use domain::caller::Caller;
use domain::id::Id;
use domain::idempotency::Parties;
use domain::orders;
use domain::page::Page;
use domain::payments::{self, NewPayment, Payment, PaymentQuery};
use web::auth::AuthUser;
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::idempotency::{self, Created, IdempotencyKey, Job, Tx};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/payments", post(create))
        .route("/payments/{payment_id}", get(show))
        .route("/orders/{order_id}/payments", get(list_for_order))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    key: IdempotencyKey,
    Json(input): Json<NewPayment>,
) -> ApiResult<Response> {
    // An order whose stock hold has run out is cancelled before anything is paid on it.
    orders::settle(&state.pool, input.order_id.get()).await?;
    let request = input.clone();
    let parties = Parties {
        caller: caller.id,
        owner: None,
    };
    let job = RecordPayment { caller, input };
    idempotency::create_once(&state.pool, parties, key, "POST /payments", &request, job).await
}

/// `POST /payments`: the payment recorded (and its order settled) in one write.
#[derive(Clone)]
struct RecordPayment {
    caller: Caller,
    input: NewPayment,
}

impl Job for RecordPayment {
    type Resource = Payment;

    async fn write(&self, tx: &mut Tx<'static>) -> ApiResult<Created<Payment>> {
        let payment = payments::record(tx, &self.caller, &self.input).await?;
        Ok(Created {
            location: format!("/payments/{}", payment.id),
            resource: payment,
        })
    }
}

async fn show(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Payment>> {
    Ok(axum::Json(
        payments::get_for(&state.pool, &caller, id.0).await?,
    ))
}

async fn list_for_order(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(order_id): Path<Id>,
    Query(query): Query<PaymentQuery>,
) -> ApiResult<axum::Json<Page<Payment>>> {
    Ok(axum::Json(
        payments::list_for_order(&state.pool, &caller, order_id.0, &query).await?,
    ))
}
