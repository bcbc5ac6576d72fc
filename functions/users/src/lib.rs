//! The `users` function: registration, login, profiles and address books.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use domain::addresses::{self, Address, AddressQuery, PostalAddress};
use domain::id::Id;
use domain::page::Page;
use domain::users::{self, Credentials, Profile, Registration, User, UserPatch};
use serde::Serialize;
use web::auth::AuthUser;
use web::client::Client;
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/register", post(register))
        .route("/users/login", post(login))
        .route("/users/{user_id}", get(show).put(update).delete(remove))
        .route(
            "/users/{user_id}/addresses",
            get(list_addresses).post(add_address),
        )
        .route(
            "/users/{user_id}/addresses/{address_id}",
            delete(remove_address),
        )
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn register(
    State(state): State<AppState>,
    Json(input): Json<Registration>,
) -> ApiResult<Response> {
    let user = users::register(&state.pool, input).await?;
    Ok(web::router::created(format!("/users/{}", user.id), user))
}

/// `POST /users/login`: a bearer token and the user it belongs to.
#[derive(Debug, Serialize)]
pub struct LoginResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub user: User,
}

async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    Json(input): Json<Credentials>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let account = users::login(&state.pool, input, &client).await?;
    let issued = state.tokens.issue(&account).await?;
    Ok(axum::Json(LoginResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        user: users::get(&state.pool, account.id).await?,
    }))
}

async fn show(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Profile>> {
    caller.require_self_or_admin(id.0)?;
    Ok(axum::Json(users::profile(&state.pool, id.0).await?))
}

async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Client(client): Client,
    Path(id): Path<Id>,
    Json(patch): Json<UserPatch>,
) -> ApiResult<axum::Json<User>> {
    caller.require_self_or_admin(id.0)?;
    Ok(axum::Json(
        users::update(&state.pool, caller, id.0, patch, &client).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<Id>,
) -> ApiResult<impl IntoResponse> {
    caller.require_self_or_admin(id.0)?;
    users::delete(&state.pool, caller, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_addresses(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(user_id): Path<Id>,
    Query(query): Query<AddressQuery>,
) -> ApiResult<axum::Json<Page<Address>>> {
    caller.require_self_or_admin(user_id.0)?;
    users::require_existing_user(&state.pool, user_id.0).await?;
    Ok(axum::Json(
        addresses::list(&state.pool, user_id.0, &query).await?,
    ))
}

async fn add_address(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(user_id): Path<Id>,
    Json(input): Json<PostalAddress>,
) -> ApiResult<Response> {
    caller.require_self_or_admin(user_id.0)?;
    let address = addresses::create(&state.pool, user_id.0, input).await?;
    Ok(web::router::created(
        format!("/users/{}/addresses/{}", user_id.0, address.id),
        address,
    ))
}

async fn remove_address(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((user_id, address_id)): Path<(Id, Id)>,
) -> ApiResult<StatusCode> {
    caller.require_self_or_admin(user_id.0)?;
    users::require_existing_user(&state.pool, user_id.0).await?;
    addresses::delete(&state.pool, user_id.0, address_id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
