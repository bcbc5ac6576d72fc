//! The client address of a request, as the host saw it: never a header the client writes.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;
use domain::users::ClientAddress;
use lambda_http::request::RequestContext;

/// The address login throttling counts a request under: API Gateway's `sourceIp` (HTTP
/// APIs: `requestContext.http.sourceIp`; REST APIs: `requestContext.identity.sourceIp`),
/// or else the socket peer of a plain HTTP host (`serve`). `X-Forwarded-For` and the like
/// are ignored: anyone can write them. `cargo lambda watch` reports every local caller as
/// `127.0.0.1`. When neither is there (a router called in process), the address is
/// [`ClientAddress::unknown`].
#[derive(Debug, Clone)]
pub struct Client(pub ClientAddress);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Client(client_address(&parts.extensions)))
    }
}

fn client_address(extensions: &Extensions) -> ClientAddress {
    let source_ip = match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.as_deref(),
        _ => None,
    };
    if let Some(text) = source_ip {
        let address = ClientAddress::parse(text);
        if !address.is_known() {
            tracing::warn!(
                source_ip = text,
                "API Gateway's source address is no IP address"
            );
        }
        return address;
    }
    match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => ClientAddress::from_ip(peer.ip()),
        None => ClientAddress::unknown(),
    }
}
