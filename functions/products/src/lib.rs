//! The `products` function: the catalogue's HTTP routes.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use domain::id::Id;
use domain::page::Page;
use domain::products::{self, NewProduct, Product, ProductPatch, ProductQuery};
use domain::variants::{self, NewVariant, Variant, VariantPatch, VariantQuery};
use web::auth::Admin;
use web::error::ApiResult;
use web::extract::{Json, Path, Query};
use web::state::AppState;

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/products", get(list).post(create))
        .route(
            "/products/{product_id}",
            get(show).put(update).delete(remove),
        )
        .route(
            "/products/{product_id}/variants",
            get(list_variants).post(create_variant),
        )
        .route(
            "/variants/{variant_id}",
            get(show_variant).put(update_variant).delete(remove_variant),
        )
        // The API's own description, for front-end developers and their tools.
        .route("/openapi.json", get(web::router::openapi))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn list(
    State(state): State<AppState>,
    Query(query): Query<ProductQuery>,
) -> ApiResult<axum::Json<Page<Product>>> {
    Ok(axum::Json(products::list(&state.pool, &query).await?))
}

async fn show(State(state): State<AppState>, Path(id): Path<Id>) -> ApiResult<axum::Json<Product>> {
    Ok(axum::Json(products::get(&state.pool, id.0).await?))
}

async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    Json(input): Json<NewProduct>,
) -> ApiResult<impl IntoResponse> {
    let product = products::create(&state.pool, input).await?;
    Ok(web::router::created(
        format!("/products/{}", product.id),
        product,
    ))
}

async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
    Json(patch): Json<ProductPatch>,
) -> ApiResult<axum::Json<Product>> {
    Ok(axum::Json(
        domain::stock::update_product(&state.pool, id.0, patch).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    products::delete(&state.pool, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_variants(
    State(state): State<AppState>,
    Path(product_id): Path<Id>,
    Query(query): Query<VariantQuery>,
) -> ApiResult<axum::Json<Page<Variant>>> {
    Ok(axum::Json(
        variants::list(&state.pool, product_id.0, &query).await?,
    ))
}

async fn create_variant(
    State(state): State<AppState>,
    _admin: Admin,
    Path(product_id): Path<Id>,
    Json(input): Json<NewVariant>,
) -> ApiResult<impl IntoResponse> {
    let variant = variants::create(&state.pool, product_id.0, input).await?;
    Ok(web::router::created(
        format!("/variants/{}", variant.id),
        variant,
    ))
}

async fn show_variant(
    State(state): State<AppState>,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Variant>> {
    Ok(axum::Json(variants::get(&state.pool, id.0).await?))
}

async fn update_variant(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
    Json(patch): Json<VariantPatch>,
) -> ApiResult<axum::Json<Variant>> {
    Ok(axum::Json(
        domain::stock::update_variant(&state.pool, id.0, patch).await?,
    ))
}

async fn remove_variant(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    variants::delete(&state.pool, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}
