//! What a variant is, and the rules of its SKU and options.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::FieldError;
use crate::money::Money;
use crate::page::Limit;
use crate::time::timestamp;
use crate::validate::{Checks, Validate, whole};

/// Highest stock a variant may hold: far above any shelf, far below the column's limit,
/// so returning cancelled stock can never overflow it.
pub const MAX_STOCK: u32 = 1_000_000_000;
pub const MAX_SKU_CHARS: usize = 64;
pub const MAX_OPTIONS: usize = 3;
pub const MAX_OPTION_CHARS: usize = 50;

/// A stock-keeping unit: 1 to 64 of `A-Z a-z 0-9 . _ -`, kept as given, unique across the
/// shop case-insensitively (the column's collation decides that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if text.is_empty() || text.len() > MAX_SKU_CHARS {
            return Err("must be 1 to 64 characters");
        }
        if !text.chars().all(allowed) {
            return Err("may hold only A-Z, a-z, 0-9, '.', '_' and '-'");
        }
        Ok(Self(text.to_owned()))
    }

    /// A SKU as stored: checked when it was written.
    pub(crate) fn from_db(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Sku {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(D::Error::custom)
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What sets a variant apart: 0 to 3 option names, each with a value, names and values 1
/// to 50 characters. Kept sorted by name, so that equal objects have one text (how the
/// database compares them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Options(BTreeMap<String, String>);

impl Options {
    pub fn parse(options: BTreeMap<String, String>) -> Result<Self, String> {
        if options.len() > MAX_OPTIONS {
            return Err(format!("must have at most {MAX_OPTIONS} options"));
        }
        let fits = |text: &str| (1..=MAX_OPTION_CHARS).contains(&text.chars().count());
        for (name, value) in &options {
            if !fits(name) || !fits(value) {
                return Err(format!(
                    "option names and values must be 1 to {MAX_OPTION_CHARS} characters"
                ));
            }
        }
        Ok(Self(options))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The canonical text the database keeps and compares.
    pub fn to_db(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    /// Options as stored; text the database holds that is not an object reads as none.
    pub(crate) fn from_db(text: &str) -> Self {
        Self(serde_json::from_str(text).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Self::parse(map).map_err(D::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub id: u64,
    pub product_id: u64,
    pub sku: Sku,
    pub options: Options,
    pub price: Money,
    pub stock: u32,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVariant {
    pub sku: Sku,
    pub options: Options,
    pub price: Money,
    #[serde(deserialize_with = "whole")]
    pub stock: u32,
}

impl Validate for NewVariant {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Checks::new()
            .range("stock", self.stock, 0, MAX_STOCK)
            .finish()
    }
}

/// A partial update of a variant: absent fields stay as they are.
/// `null` sets nothing here: every field has a value, so it is refused as invalid input rather than
/// read as "leave it".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantPatch {
    #[serde(default, deserialize_with = "present")]
    pub sku: Option<Sku>,
    #[serde(default, deserialize_with = "present")]
    pub options: Option<Options>,
    #[serde(default, deserialize_with = "present")]
    pub price: Option<Money>,
    #[serde(default, deserialize_with = "present_whole")]
    pub stock: Option<u32>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn present_whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole(d).map(Some)
}

impl Validate for VariantPatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        let empty = self.sku.is_none()
            && self.options.is_none()
            && self.price.is_none()
            && self.stock.is_none();
        checks.check(!empty, "body", "must set at least one field");
        if let Some(stock) = self.stock {
            checks.range("stock", stock, 0, MAX_STOCK);
        }
        checks.finish()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct VariantQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for VariantQuery {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_keep_their_case_and_refuse_other_characters() {
        assert_eq!(Sku::parse("Tee-M.red_1").unwrap().as_str(), "Tee-M.red_1");
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse(&"a".repeat(65)).is_err());
        assert!(Sku::parse("tee m").is_err());
        assert!(Sku::parse("tée").is_err());
    }

    #[test]
    fn options_are_canonical_and_bounded() {
        let a: Options = serde_json::from_str(r#"{"size":"M","colour":"red"}"#).unwrap();
        let b: Options = serde_json::from_str(r#"{"colour":"red","size":"M"}"#).unwrap();
        assert_eq!(a.to_db(), b.to_db());
        assert_eq!(a.to_db(), r#"{"colour":"red","size":"M"}"#);
        assert!(serde_json::from_str::<Options>(r#"{"a":"1","b":"2","c":"3","d":"4"}"#).is_err());
        assert!(serde_json::from_str::<Options>(r#"{"size":""}"#).is_err());
        assert!(serde_json::from_str::<Options>(r#"{"size":1}"#).is_err());
        assert!(Options::from_db("{}").is_empty());
    }
}
