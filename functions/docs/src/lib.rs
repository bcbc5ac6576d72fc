//! The `docs` function: the API reference page. Swagger UI renders `/openapi.json`; its
//! script and style come from the `swagger-ui-dist` crate and are served by this function,
//! so the page makes no request outside the API and works offline. A function of its own,
//! so that the other bootstraps do not carry the viewer.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use swagger_ui_dist::{ApiDefinition, OpenApiSource};
use tower::ServiceExt;

/// The page's own files; everything else under `/docs/` is the viewer's.
const INDEX_HTML: &str = include_str!("../assets/index.html");
const INIT_JS: &str = include_str!("../assets/init.js");

/// What the viewer's files are served under, as the crate names them.
const VIEWER_ASSETS: [&str; 4] = [
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui.css.map",
    "swagger-ui-bundle.js.map",
];

/// Only this origin's scripts, styles and API calls; Swagger UI sets a few inline styles
/// and shows its icons as data URLs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; \
    form-action 'self'";

/// An hour: the files change only with a deployment.
const CACHE_ASSETS: &str = "public, max-age=3600";

/// This function's routes, for Lambda ([`router`]) or for a host serving several functions.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/docs", get(index))
        .route("/docs/{asset}", get(asset))
}

/// The complete router Lambda runs: the routes plus 404/405 problems and the body limit.
pub fn router() -> Router {
    web::router::finish_stateless(routes())
}

async fn index() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The viewer's files as the crate serves them, under `/docs`.
static VIEWER: LazyLock<Router> = LazyLock::new(|| {
    swagger_ui_dist::generate_routes(ApiDefinition {
        uri_prefix: "/docs",
        api_definition: OpenApiSource::Uri("/openapi.json"),
        title: Some("Shop API reference"),
    })
});

async fn asset(Path(name): Path<String>) -> Response {
    let mut response = if name == "init.js" {
        ([(header::CONTENT_TYPE, "text/javascript")], INIT_JS).into_response()
    } else if VIEWER_ASSETS.contains(&name.as_str()) {
        let request = Request::get(format!("/docs/{name}"))
            .body(Body::empty())
            .expect("a valid request");
        match VIEWER.clone().oneshot(request).await {
            Ok(response) if response.status() == StatusCode::OK => response,
            _ => return not_found(),
        }
    } else {
        return not_found();
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_ASSETS),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn not_found() -> Response {
    web::error::ApiError::not_found("resource").into_response()
}
