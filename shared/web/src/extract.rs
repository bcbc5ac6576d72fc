//! Request extractors that speak the contract: every rejection becomes a problem+json
//! 400/413/415 with the offending field named, never axum's plain-text bodies or 422s.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use domain::error::Error;
use domain::validate::Validate;

use crate::error::ApiError;

/// The largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON object body, deserialised strictly and validated.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json_content_type(req.headers())?;
        let bytes = read_body(req, state).await?;
        parse_object(&bytes).map(Json)
    }
}

/// A JSON object body that may also be absent (checkout takes no body, or `{}`).
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_content_type = req.headers().contains_key(header::CONTENT_TYPE);
        let headers = req.headers().clone();
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if has_content_type || !bytes.is_empty() {
            require_json_content_type(&headers)?;
        }
        parse_object(&bytes).map(OptionalJson)
    }
}

fn require_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("The request body could not be read.".into())
        }
    })
}

/// Parses a body that must be a JSON object, naming the field at fault on failure. A body
/// that is not JSON says where it breaks, as serde_json counts: lines from 1, and the
/// column of the character it stopped at.
pub fn parse_object<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "The request body must be a JSON object.".into(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => field_error(&path, &inner),
            _ => malformed(&inner),
        }
    })?;
    deserializer.end().map_err(|err| malformed(&err))?;
    value.validate().map_err(Error::Invalid)?;
    Ok(value)
}

/// `Malformed JSON at line 1, column 62: expected value.`
fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!(
        "Malformed JSON {}: {}.",
        position(err),
        without_position(&err.to_string())
    ))
}

fn position(err: &serde_json::Error) -> String {
    format!("at line {}, column {}", err.line(), err.column())
}

/// A value that does not fit its field, named by its path. serde reports a missing field
/// at its parent's path: name the field itself. What belongs to no field (the body as a
/// whole) is said in `detail`, with where serde_json stopped.
fn field_error(path: &str, err: &serde_json::Error) -> ApiError {
    let full = err.to_string();
    let message = without_position(&full);
    let at_root = matches!(path, "." | "");
    let child = |name: &str| {
        if at_root {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .map(|rest| rest.split('`').next().unwrap_or_default())
    };
    if let Some(name) = quoted("missing field `") {
        ApiError::invalid(child(name), "is required")
    } else if let Some(name) = quoted("unknown field `") {
        // Below the root, the path already ends with the unknown key.
        let field = if at_root { name } else { path };
        ApiError::invalid(field, "is not a known field")
    } else if let Some(name) = quoted("duplicate field `") {
        ApiError::invalid(child(name), "is given more than once")
    } else if at_root {
        ApiError::BadRequest(format!(
            "The request body does not fit {}: {message}.",
            position(err)
        ))
    } else {
        ApiError::invalid(path, message)
    }
}

fn without_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

/// Query-string parameters, deserialised and validated. Unknown parameters are ignored;
/// a repeated or malformed one is a 400 naming it.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        let value: T = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let field = err.path().to_string();
            let message = err.into_inner().to_string();
            let field = match message.strip_prefix("duplicate field `") {
                Some(rest) => rest.split('`').next().unwrap_or_default().to_string(),
                None => field,
            };
            ApiError::invalid(field, message)
        })?;
        value.validate().map_err(Error::Invalid)?;
        Ok(Query(value))
    }
}

/// Path parameters; a malformed id is a 400 naming it.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                // Name the parameter at fault: the first one that is not a positive id.
                let raw = axum::extract::RawPathParams::from_request_parts(parts, state).await;
                let field = raw
                    .ok()
                    .and_then(|params| {
                        params
                            .iter()
                            .find(|(_, value)| value.parse::<u64>().map_or(true, |id| id == 0))
                            .map(|(key, _)| key.to_string())
                    })
                    .unwrap_or_else(|| "id".to_string());
                Err(ApiError::invalid(field, "must be a positive integer id"))
            }
            Err(other) => Err(ApiError::internal(other)),
        }
    }
}
