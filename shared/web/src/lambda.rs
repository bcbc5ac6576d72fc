//! The Lambda entry point: a function's router behind `lambda_http`.

use axum::Router;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{LambdaEvent, RequestExt, Service};
use lambda_runtime::service_fn;
use serde_json::Value;

/// A function's router behind a step that removes a REST API stage (`/Prod/products` →
/// `/products`), so one build serves HTTP APIs, REST APIs and custom domains alike.
pub type LambdaService =
    tower::util::MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

pub fn lambda_service(router: Router) -> LambdaService {
    tower::util::MapRequest::new(router, strip_stage as fn(_) -> _)
}

/// Runs a function's router on the Lambda runtime until the instance is shut down.
pub async fn run_lambda(router: Router) -> Result<(), lambda_http::Error> {
    let service = lambda_service(router);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handle(service.clone(), event)
    }))
    .await
}

/// One invocation: the API Gateway event, made safe to turn into a request, through the
/// router, and back as the response Lambda returns to API Gateway.
pub async fn handle(
    service: LambdaService,
    event: LambdaEvent<Value>,
) -> Result<impl serde::Serialize + use<>, lambda_http::Error> {
    let (mut payload, context) = event.into_parts();
    drop_unparseable_hosts(&mut payload);
    let request: LambdaRequest = serde_json::from_value(payload)?;
    let mut adapter = lambda_http::Adapter::from(service);
    Ok(adapter.call(LambdaEvent::new(request, context)).await?)
}

/// `lambda_http` builds each request's URL from the `Host` header (or the API's domain
/// name) and the `X-Forwarded-Proto` header, and panics when that URL does not parse: a
/// host whose last label is a number, such as `api.10.0.0.999`, is read as a broken IPv4
/// address. API Gateway only routes requests for its own domains, but emulators and custom
/// domains pass other hosts through, and a panic costs a cold start. The router never uses
/// the host, so any that would not parse is dropped (the URL is then relative), and a
/// scheme other than http or https is ignored.
fn drop_unparseable_hosts(event: &mut Value) {
    let proto_ok = |value: &Value| matches!(value.as_str(), Some("http" | "https"));
    let host_ok = |value: &Value| {
        value
            .as_str()
            .is_some_and(|host| url::Url::parse(&format!("https://{host}/")).is_ok())
    };
    for headers in ["headers", "multiValueHeaders"] {
        let Some(Value::Object(map)) = event.get_mut(headers) else {
            continue;
        };
        map.retain(|name, value| {
            let first = match value {
                Value::Array(values) => values.first().cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            if name.eq_ignore_ascii_case("host") {
                host_ok(&first)
            } else if name.eq_ignore_ascii_case("x-forwarded-proto") {
                proto_ok(&first)
            } else {
                true
            }
        });
    }
    if let Some(Value::Object(context)) = event.get_mut("requestContext")
        && context.get("domainName").is_some_and(|name| !host_ok(name))
    {
        context.remove("domainName");
    }
}

fn strip_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return request;
    };
    let prefix = format!("/{stage}");
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix(&prefix) else {
        return request;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return request;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(new_uri) = axum::http::Uri::from_parts(parts) {
            *request.uri_mut() = new_uri;
        }
    }
    request
}

/// Logging for a function: JSON on Lambda (`AWS_LAMBDA_LOG_FORMAT`), text locally.
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}
