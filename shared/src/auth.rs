//! Bearer tokens and the rules of who may do what.
//!
//! Access tokens are HS256 JWTs with `sub`, `role`, `iat`, `exp` and `ver`, the user's token
//! version when the token was issued. Every authenticated request checks the token against
//! the user's current row: a deleted user, or a password change (which bumps the version),
//! revokes every token issued before. The role is taken from the row, not the token, so a
//! demotion applies at once.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;
use crate::users::{self, Role};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub ver: u32,
}

/// The signing key and token lifetime, built once per cold start.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

/// A freshly issued access token.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Only HS256 is accepted: `alg: none` and every other algorithm fail validation.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub", "exp", "iat"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user_id: u64, role: Role, version: u32) -> Result<IssuedToken, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat: now,
            exp: now + ttl as i64,
            ver: version,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok(IssuedToken {
            token,
            expires_in: ttl,
        })
    }

    /// Checks signature, algorithm and expiry. Revocation needs the database: see [`AuthUser`].
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::Unauthorized("The access token is invalid or expired."))
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: u64,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Admin routes: a customer gets 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("This action requires an admin."))
        }
    }

    /// Routes under `/users/{user_id}`: a customer naming someone else gets the 404 a
    /// missing user would get, so ids of other customers reveal nothing.
    pub fn require_self_or_admin(&self, user_id: u64) -> Result<(), ApiError> {
        if self.is_admin() || self.id == user_id {
            Ok(())
        } else {
            Err(ApiError::NotFound("user"))
        }
    }

    /// Resources that belong to a user (orders, payments): another customer's is "not found".
    pub fn require_owner_or_admin(
        &self,
        owner_id: u64,
        what: &'static str,
    ) -> Result<(), ApiError> {
        if self.is_admin() || self.id == owner_id {
            Ok(())
        } else {
            Err(ApiError::NotFound(what))
        }
    }

    /// A body's optional `user_id`: defaults to the caller; naming another user is 403
    /// for a customer (the contract's rule for bodies, unlike paths).
    pub fn acting_for(&self, user_id: Option<u64>) -> Result<u64, ApiError> {
        match user_id {
            None => Ok(self.id),
            Some(id) if id == self.id || self.is_admin() => Ok(id),
            Some(_) => Err(ApiError::Forbidden(
                "A customer may only act for themselves.",
            )),
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let claims = state.tokens.verify(token)?;
        let id: u64 = claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthorized("The access token is invalid or expired."))?;
        match users::token_state(&state.pool, id).await? {
            Some((role, version)) if version == claims.ver => Ok(AuthUser { id, role }),
            _ => Err(ApiError::Unauthorized("The access token has been revoked.")),
        }
    }
}

/// An authenticated admin (403 for a customer, 401 without a valid token).
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub AuthUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require_admin()?;
        Ok(Admin(user))
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
