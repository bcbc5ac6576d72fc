//! The Lambda entry point: a function's router behind `lambda_http`.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;

use axum::Router;
use axum::response::IntoResponse;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{LambdaEvent, RequestExt, Service};
use lambda_runtime::service_fn;
use serde_json::Value;

use crate::error::ApiError;
use crate::router::panic_message;

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
///
/// `lambda_http` panics on a few events it cannot turn into a request; the known ones are
/// made convertible first ([`drop_unparseable_hosts`], [`encode_raw_query`]), and any other
/// is caught and answered like a panicking handler: a 500 problem, the instance unharmed.
pub async fn handle(
    service: LambdaService,
    event: LambdaEvent<Value>,
) -> Result<impl serde::Serialize + use<>, lambda_http::Error> {
    let (mut payload, context) = event.into_parts();
    drop_unparseable_hosts(&mut payload);
    encode_raw_query(&mut payload);
    let request: LambdaRequest = serde_json::from_value(payload)?;
    let stand_in = stand_in_for(&request);
    let event = LambdaEvent::new(request, context.clone());
    // Each adapter lives only for its call: the future it returns is `Send`, so that
    // invocations can run in parallel (the tests' concurrent logins do).
    let converted = std::panic::catch_unwind(AssertUnwindSafe(|| {
        lambda_http::Adapter::from(service).call(event)
    }));
    match converted {
        Ok(response) => Ok(response.await?),
        Err(panic) => {
            let message = format!(
                "the API Gateway event could not become a request: {}",
                panic_message(&*panic)
            );
            let answer = lambda_http::Adapter::from(tower::service_fn(move |_| {
                let error = ApiError::internal(&message);
                async move { Ok::<_, Infallible>(error.into_response()) }
            }))
            .call(LambdaEvent::new(stand_in, context));
            Ok(answer.await?)
        }
    }
}

/// A request of the same kind as `request` (so its answer has the shape API Gateway
/// expects) that `lambda_http` can always convert: no host, no path, no query.
fn stand_in_for(request: &LambdaRequest) -> LambdaRequest {
    match request {
        LambdaRequest::ApiGatewayV1(_) => LambdaRequest::ApiGatewayV1(Default::default()),
        _ => LambdaRequest::ApiGatewayV2(Default::default()),
    }
}

/// HTTP API events carry the query string as the client sent it, and `lambda_http` appends
/// it to the URL unchecked: a byte a URL may not hold raw (a space, `"`, `<`, `>`, a
/// control character) makes it panic. Those bytes are percent-encoded, which the query
/// parser decodes back to the same text; `#` too, since it would end the query.
fn encode_raw_query(event: &mut Value) {
    let Some(Value::String(query)) = event.get_mut("rawQueryString") else {
        return;
    };
    let refused = |c: char| c.is_ascii_control() || matches!(c, ' ' | '"' | '#' | '<' | '>');
    if !query.contains(refused) {
        return;
    }
    let mut encoded = String::with_capacity(query.len() + 16);
    for c in query.chars() {
        if refused(c) {
            encoded.push_str(&format!("%{:02X}", c as u32));
        } else {
            encoded.push(c);
        }
    }
    *query = encoded;
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
