//! Input rules shared by every request type: checked once, in the extractors, so a handler
//! only ever sees input that already satisfies the contract.

use serde::{Deserialize, Deserializer};

use crate::error::FieldError;

/// Implemented by every request body and query type; called by the extractors.
pub trait Validate {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// Collects every broken rule of one input so the client can fix them all at once.
#[derive(Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) -> &mut Self {
        if !ok {
            self.0.push(FieldError::new(field, message));
        }
        self
    }

    /// Length in characters (not bytes), and never only white space.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> &mut Self {
        let len = value.chars().count();
        if len < min || len > max {
            self.0.push(FieldError::new(
                field,
                format!("must be {min} to {max} characters long"),
            ));
        } else if min > 0 && value.chars().all(is_blank) {
            self.0.push(FieldError::new(field, "must not be blank"));
        }
        self
    }

    pub fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) -> &mut Self {
        if let Some(value) = value {
            self.text(field, value, 0, max);
        }
        self
    }

    pub fn range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        value: T,
        min: T,
        max: T,
    ) -> &mut Self {
        if value < min || value > max {
            self.0.push(FieldError::new(
                field,
                format!("must be between {min} and {max}"),
            ));
        }
        self
    }

    pub fn finish(&mut self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(std::mem::take(&mut self.0))
        }
    }
}

/// For update bodies: tells "field absent" (`None`) from "field set to null" (`Some(None)`).
/// Use with `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Whole numbers in JSON bodies: `2` and `2.0` are the same number in JSON, so both are
/// accepted; `2.5`, negatives and values beyond the target type are refused.
/// Use with `#[serde(deserialize_with = "whole")]`.
pub fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = deserializer.deserialize_any(WholeVisitor)?;
    T::try_from(value).map_err(|_| serde::de::Error::custom("is too large"))
}

/// [`whole`] for optional fields (`null` or absent is `None`); add `default`.
pub fn optional_whole<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    match Option::<WholeNumber>::deserialize(deserializer)? {
        None => Ok(None),
        Some(WholeNumber(value)) => T::try_from(value)
            .map(Some)
            .map_err(|_| serde::de::Error::custom("is too large")),
    }
}

/// [`whole`] for nullable update fields: absent is `None`, `null` is `Some(None)`.
pub fn nullable_whole<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    optional_whole(deserializer).map(Some)
}

struct WholeNumber(u64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WholeVisitor).map(WholeNumber)
    }
}

pub(crate) struct WholeVisitor;

impl serde::de::Visitor<'_> for WholeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<u64, E> {
        u64::try_from(value).map_err(|_| E::custom("must not be negative"))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<u64, E> {
        // Beyond 2^53 a float no longer holds every whole number exactly.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if value.fract() != 0.0 || !value.is_finite() {
            Err(E::custom("must be a whole number"))
        } else if value < 0.0 {
            Err(E::custom("must not be negative"))
        } else if value > EXACT {
            Err(E::custom("is too large"))
        } else {
            Ok(value as u64)
        }
    }
}

/// White space as Unicode defines it, plus the byte-order mark: exactly what the OpenAPI
/// patterns' `[^\s\u0085]` (ECMAScript's `\s`, which has the mark but not U+0085) leaves
/// out, so that the spec and the server agree on what is blank.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "whole")]
        n: u32,
        #[serde(default, deserialize_with = "optional_whole")]
        o: Option<u64>,
    }

    fn parse(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        assert_eq!(parse(r#"{"n": 2}"#).unwrap().n, 2);
        assert_eq!(parse(r#"{"n": 2.0}"#).unwrap().n, 2);
        assert_eq!(parse(r#"{"n": 1, "o": 7.0}"#).unwrap().o, Some(7));
        assert_eq!(parse(r#"{"n": 1, "o": null}"#).unwrap().o, None);
        assert_eq!(parse(r#"{"n": 1}"#).unwrap().o, None);
        assert!(parse(r#"{"n": 2.5}"#).unwrap_err().contains("whole number"));
        assert!(parse(r#"{"n": -1}"#).unwrap_err().contains("negative"));
        assert!(
            parse(r#"{"n": 4294967296}"#)
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse(r#"{"n": 1e300}"#).unwrap_err().contains("too large"));
        assert!(parse(r#"{"n": "2"}"#).is_err());
        assert!(parse(r#"{"n": true}"#).is_err());
    }
}
