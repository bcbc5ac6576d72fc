//! Bearer tokens: HS256 JWTs with `sub`, `role`, `iat`, `exp` and `ver`, the user's token
//! version when the token was issued (a new password bumps it, revoking older tokens).

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use platform::config::SigningKeySource;

use domain::role::Role;
use domain::users::Account;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub ver: u32,
}

/// The signing key in use and the token lifetime. On Lambda the key is read again from
/// Secrets Manager every `SECRETS_REFRESH_SECONDS`, so a rotated key reaches running
/// instances without a deploy: from then on, tokens signed with the old key are refused.
pub struct Tokens {
    keys: RwLock<Arc<TokenKeys>>,
    source: Option<SigningKeySource>,
    refresh: Duration,
    read_at: Mutex<Instant>,
    ttl: Duration,
}

impl Tokens {
    /// A key read from `source`, read again every `refresh`.
    pub fn new(
        secret: &[u8],
        ttl: Duration,
        source: Option<SigningKeySource>,
        refresh: Duration,
    ) -> Self {
        Self {
            keys: RwLock::new(Arc::new(TokenKeys::new(secret, ttl))),
            source,
            refresh,
            read_at: Mutex::new(Instant::now()),
            ttl,
        }
    }

    pub async fn issue(&self, account: &Account) -> Result<IssuedToken, ApiError> {
        self.current().await.issue(account)
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.current().await.verify(token)
    }

    /// The key to use now, read again first when the last read is older than `refresh`.
    /// A failed read keeps the key in use and tries again at the next refresh.
    async fn current(&self) -> Arc<TokenKeys> {
        if let Some(source) = &self.source {
            let due = {
                let mut read_at = self.read_at.lock().unwrap_or_else(PoisonError::into_inner);
                let due = read_at.elapsed() >= self.refresh;
                if due {
                    *read_at = Instant::now();
                }
                due
            };
            if due {
                match source.read().await {
                    Ok(secret) => {
                        let keys = Arc::new(TokenKeys::new(secret.expose().as_bytes(), self.ttl));
                        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "reading the signing key again failed")
                    }
                }
            }
        }
        // A lock poisoned by a panicking request still holds a whole key: keep serving.
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One signing key, ready to sign and verify.
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
    fn new(secret: &[u8], ttl: Duration) -> Self {
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

    /// A token for an account that has just proved who it is.
    fn issue(&self, account: &Account) -> Result<IssuedToken, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            sub: account.id.to_string(),
            role: account.role,
            iat: now,
            exp: now + ttl as i64,
            ver: account.token_version,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok(IssuedToken {
            token,
            expires_in: ttl,
        })
    }

    /// Checks signature, algorithm and expiry. Revocation needs the database: see
    /// [`crate::auth::AuthUser`].
    fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| ApiError::Unauthorized("The access token is invalid or expired."))
    }
}
