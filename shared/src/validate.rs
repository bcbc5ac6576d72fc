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
        } else if min > 0 && value.trim().is_empty() {
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
