//! The `cart` function: a user's cart and its checkout.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use domain::addresses::Shipping;
use domain::caller::Caller;
use domain::cart::{self, Cart, Checkout, SetQuantity};
use domain::discounts::Code;
use domain::id::Id;
use domain::idempotency::Parties;
use domain::orders::Item;
use domain::orders::{Limits, Placed};
use domain::users;
use web::auth::AuthUser;
use web::error::ApiResult;
use web::extract::{Json, OptionalJson, Path};
use web::idempotency::{self, Created, IdempotencyKey, Job, Tx};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{user_id}/cart", get(show).delete(clear))
        .route(
            "/users/{user_id}/cart/items/{product_id}",
            put(set_line).delete(remove_line),
        )
        .route(
            "/users/{user_id}/cart/variants/{variant_id}",
            put(set_variant_line).delete(remove_variant_line),
        )
        .route("/users/{user_id}/cart/checkout", post(checkout))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn show(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(user_id): Path<Id>,
) -> ApiResult<axum::Json<Cart>> {
    caller.require_self_or_admin(user_id.0)?;
    Ok(axum::Json(cart::get(&state.pool, user_id.0).await?))
}

async fn set_line(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((user_id, product_id)): Path<(Id, Id)>,
    Json(input): Json<SetQuantity>,
) -> ApiResult<axum::Json<Cart>> {
    caller.require_self_or_admin(user_id.0)?;
    Ok(axum::Json(
        cart::set_line(
            &state.pool,
            user_id.0,
            Item::Product(product_id.0),
            input.quantity,
        )
        .await?,
    ))
}

async fn set_variant_line(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((user_id, variant_id)): Path<(Id, Id)>,
    Json(input): Json<SetQuantity>,
) -> ApiResult<axum::Json<Cart>> {
    caller.require_self_or_admin(user_id.0)?;
    Ok(axum::Json(
        cart::set_line(
            &state.pool,
            user_id.0,
            Item::Variant(variant_id.0),
            input.quantity,
        )
        .await?,
    ))
}

async fn remove_variant_line(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((user_id, variant_id)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    caller.require_self_or_admin(user_id.0)?;
    cart::remove_line(&state.pool, user_id.0, Item::Variant(variant_id.0)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_line(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((user_id, product_id)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    caller.require_self_or_admin(user_id.0)?;
    cart::remove_line(&state.pool, user_id.0, Item::Product(product_id.0)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(user_id): Path<Id>,
) -> ApiResult<StatusCode> {
    caller.require_self_or_admin(user_id.0)?;
    cart::clear(&state.pool, user_id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn checkout(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    key: IdempotencyKey,
    Path(user_id): Path<Id>,
    OptionalJson(input): OptionalJson<Checkout>,
) -> ApiResult<Response> {
    caller.require_self_or_admin(user_id.0)?;
    let user_id = user_id.0;
    users::require_existing_user(&state.pool, user_id).await?;
    let limits = state.order_limits();
    let shipping = input.shipping();
    let discount = input.discount_code.clone();
    let route = "POST /users/{user_id}/cart/checkout";
    let request = (user_id, input);
    let parties = Parties {
        caller: caller.id,
        owner: Some(user_id),
    };
    let job = CheckOut {
        caller,
        user_id,
        shipping,
        discount,
        limits,
    };
    idempotency::create_once(&state.pool, parties, key, route, &request, job).await
}

/// Checkout in its two phases: the cart's order written (the cart emptied), then its stock
/// taken last.
#[derive(Clone)]
struct CheckOut {
    caller: Caller,
    user_id: u64,
    shipping: Shipping,
    discount: Option<Code>,
    limits: Limits,
}

impl Job for CheckOut {
    type Resource = Placed;

    async fn write(&self, tx: &mut Tx<'static>) -> ApiResult<Created<Placed>> {
        let placed = cart::checkout(
            tx,
            &self.caller,
            self.user_id,
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
