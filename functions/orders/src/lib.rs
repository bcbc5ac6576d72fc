//! The `orders` function: placing orders, reading them, moving them through their statuses.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use domain::addresses::Shipping;
use domain::discounts::Code;
use domain::id::Id;
use domain::orders::{
    self, Buyer, Limits, NewOrder, Order, OrderQuery, OrderSummary, Placed, StatusChange,
    WantedLine,
};
use domain::page::Page;
use web::auth::{AuthUser, Bearer};
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::idempotency::{self, Created, IdempotencyKey, Job, Tx};
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
    Bearer(claimed): Bearer,
    key: IdempotencyKey,
    Json(input): Json<NewOrder>,
) -> ApiResult<Response> {
    let user_id = input.user_id.map(Id::get);
    let buyer = Buyer::of(&state.pool, claimed, user_id, key.0.is_some()).await?;
    let job = PlaceOrder {
        buyer,
        lines: orders::merge(&input.items),
        shipping: input.shipping(),
        discount: input.discount_code.clone(),
        limits: state.order_limits(),
    };
    let parties = buyer.parties();
    idempotency::create_once(&state.pool, parties, key, "POST /orders", &input, job).await
}

/// `POST /orders` in its two phases: the order written, then its stock taken last.
#[derive(Clone)]
struct PlaceOrder {
    buyer: Buyer,
    lines: Vec<WantedLine>,
    shipping: Shipping,
    discount: Option<Code>,
    limits: Limits,
}

impl Job for PlaceOrder {
    type Resource = Placed;

    async fn write(&self, tx: &mut Tx<'static>) -> ApiResult<Created<Placed>> {
        let placed = orders::place(
            tx,
            self.buyer,
            &self.lines,
            &self.shipping,
            self.discount.as_ref(),
            self.limits,
        )
        .await?;
        let location = format!("/orders/{}", placed.order().id);
        Ok(Created {
            resource: placed,
            location,
        })
    }

    async fn finish(&self, placed: &Placed, tx: &mut Tx<'static>) -> ApiResult<()> {
        Ok(placed.take_stock(tx).await?)
    }
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
