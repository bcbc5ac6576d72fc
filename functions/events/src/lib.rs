//! The `events` function: the event feed and the webhook endpoints that receive events,
//! with their deliveries.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::events::{self, Event, EventQuery};
use domain::id::Id;
use domain::page::Page;
use domain::webhooks::deliveries::{self, Delivery, DeliveryQuery};
use domain::webhooks::delivery::Deliverer;
use domain::webhooks::endpoints::{self, Endpoint, EndpointQuery, EndpointUpdate, NewEndpoint};
use domain::webhooks::schedule::Settings;
use platform::config::ConfigError;
use platform::crypto::SealingKey;
use platform::outbound::{Outbound, Policy};
use web::auth::Admin;
use web::error::{ApiError, ApiResult};
use web::extract::{Json, Path, Query};
use web::state::AppState;

/// What the endpoint routes need beside the shared state: the key that seals signing
/// secrets, and the guarded client that checks a URL's addresses.
#[derive(Clone)]
pub struct Hooks {
    pub sealing: Arc<SealingKey>,
    pub outbound: Arc<Outbound>,
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

impl Hooks {
    /// The sealing key from `WEBHOOK_KEY_ARN` (Secrets Manager) or `WEBHOOK_KEY`, and the
    /// outbound policy (`WEBHOOK_ALLOW_LOOPBACK`, `WEBHOOK_TIMEOUT_SECONDS`).
    pub async fn from_env() -> Result<Hooks, ConfigError> {
        let var = |name: &str| std::env::var(name).ok();
        let secret = platform::aws::webhook_key(&var).await?;
        let sealing = SealingKey::from_secret(&secret).map_err(|err| ConfigError::Invalid {
            name: "WEBHOOK_KEY",
            reason: err.to_string(),
        })?;
        Ok(Hooks {
            sealing: Arc::new(sealing),
            outbound: Arc::new(Outbound::new(Policy::from_env(&var)?)),
        })
    }

    /// Makes `hooks` the process's own, once per cold start; later calls keep the first.
    pub fn install(hooks: Hooks) {
        let _ = HOOKS.set(hooks);
    }

    /// The delivery step over `pool` with these keys: what the delivery function and the
    /// local worker run.
    pub fn deliverer(&self, pool: sqlx::MySqlPool, settings: Settings) -> Deliverer {
        Deliverer {
            pool,
            outbound: Outbound::clone(&self.outbound),
            sealing: self.sealing.clone(),
            settings: Arc::new(settings),
        }
    }

    fn get() -> ApiResult<&'static Hooks> {
        HOOKS
            .get()
            .ok_or_else(|| ApiError::internal("the webhook sealing key was never loaded"))
    }
}

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", get(feed))
        .route("/webhook-endpoints", get(list).post(create))
        .route(
            "/webhook-endpoints/{endpoint_id}",
            get(show).put(update).delete(remove),
        )
        .route(
            "/webhook-endpoints/{endpoint_id}/deliveries",
            get(list_deliveries),
        )
        .route(
            "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
            post(retry),
        )
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router(state: AppState) -> Router {
    web::router::finish(routes(), state)
}

async fn feed(
    State(state): State<AppState>,
    Admin(_): Admin,
    Query(query): Query<EventQuery>,
) -> ApiResult<axum::Json<Page<Event>>> {
    Ok(axum::Json(events::list(&state.pool, &query).await?))
}

async fn list(
    State(state): State<AppState>,
    Admin(_): Admin,
    Query(query): Query<EndpointQuery>,
) -> ApiResult<axum::Json<Page<Endpoint>>> {
    Ok(axum::Json(endpoints::list(&state.pool, &query).await?))
}

async fn create(
    State(state): State<AppState>,
    Admin(_): Admin,
    Json(input): Json<NewEndpoint>,
) -> ApiResult<Response> {
    let hooks = Hooks::get()?;
    let created = endpoints::create(&state.pool, &hooks.outbound, &hooks.sealing, input).await?;
    Ok(web::router::created(
        format!("/webhook-endpoints/{}", created.endpoint.id),
        created,
    ))
}

async fn show(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<Id>,
) -> ApiResult<axum::Json<Endpoint>> {
    Ok(axum::Json(endpoints::get(&state.pool, id.0).await?))
}

async fn update(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<Id>,
    Json(input): Json<EndpointUpdate>,
) -> ApiResult<axum::Json<Endpoint>> {
    let hooks = Hooks::get()?;
    Ok(axum::Json(
        endpoints::update(&state.pool, &hooks.outbound, id.0, input).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<Id>,
) -> ApiResult<StatusCode> {
    endpoints::delete(&state.pool, id.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_deliveries(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path(id): Path<Id>,
    Query(query): Query<DeliveryQuery>,
) -> ApiResult<axum::Json<Page<Delivery>>> {
    Ok(axum::Json(
        deliveries::list(&state.pool, id.0, &query).await?,
    ))
}

/// 202: the attempt is queued for the delivery workers, not made within this request.
async fn retry(
    State(state): State<AppState>,
    Admin(_): Admin,
    Path((endpoint_id, delivery_id)): Path<(Id, Id)>,
) -> ApiResult<Response> {
    let delivery = deliveries::retry(&state.pool, endpoint_id.0, delivery_id.0).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)).into_response())
}
