//! The caller of a request, from its bearer token, checked against the database on every
//! request: a deleted user or an older token version is refused, and the role is read from
//! the user's row, not the token, so a demotion applies at once.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use domain::caller::{Caller, Claimed};

use crate::error::ApiError;
use crate::state::AppState;

/// A bearer token whose signature and expiry are valid (401 otherwise), its account not
/// yet confirmed: for a route whose transaction confirms it under a lock it takes anyway
/// (see [`domain::caller::Claimed`]). Every other route takes [`AuthUser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bearer(pub Claimed);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let claims = state.tokens.verify(token).await?;
        let id: u64 = claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthorized("The access token is invalid or expired."))?;
        Ok(Bearer(Claimed {
            id,
            token_version: claims.ver,
        }))
    }
}

/// An authenticated caller (401 without a valid token, or with one of a deleted account or
/// an older token version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser(pub Caller);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Bearer(claimed) = Bearer::from_request_parts(parts, state).await?;
        Ok(AuthUser(claimed.confirm(&state.pool).await?))
    }
}

/// An authenticated admin (403 for a customer, 401 without a valid token).
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(caller) = AuthUser::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("An access token is required."))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("The access token is invalid or expired."))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::Unauthorized(
            "The Authorization header must be 'Bearer <token>'.",
        )),
    }
}
