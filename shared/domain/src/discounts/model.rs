//! What a discount is, as the API shows it and as requests describe it.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FieldError;
use crate::money::Money;
use crate::page::Limit;
use crate::time::{optional_timestamp, timestamp};
use crate::validate::{Checks, Validate, nullable, nullable_whole, optional_whole};

pub const MIN_CODE_CHARS: usize = 3;
pub const MAX_CODE_CHARS: usize = 32;

/// A discount code as the shop keeps it: 3 to 32 of `A-Z 0-9 -`, upper-cased, so codes that
/// differ only in case are one code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Code(String);

impl Code {
    pub fn parse(text: &str) -> Option<Code> {
        let upper = text.to_ascii_uppercase();
        let ok = (MIN_CODE_CHARS..=MAX_CODE_CHARS).contains(&upper.len())
            && upper
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        ok.then_some(Code(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Code::parse(&text).ok_or_else(|| {
            D::Error::custom(format!(
                "must be {MIN_CODE_CHARS} to {MAX_CODE_CHARS} characters of A-Z, 0-9 and -"
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Kind {
    /// `value` per cent of the subtotal.
    Percent,
    /// `value` euros off, at most the subtotal.
    Amount,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Percent => "percent",
            Kind::Amount => "amount",
        }
    }
}

impl TryFrom<String> for Kind {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.as_str() {
            "percent" => Ok(Kind::Percent),
            "amount" => Ok(Kind::Amount),
            other => Err(format!("unknown discount kind {other}")),
        }
    }
}

/// A discount's `value`: a whole percentage (`15`) or an amount of money (`5.00`), shown as
/// its kind says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value {
    pub kind: Kind,
    pub amount: Decimal,
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.kind {
            Kind::Percent => {
                let whole = self.amount.trunc();
                u64::try_from(whole)
                    .map_err(serde::ser::Error::custom)?
                    .serialize(serializer)
            }
            Kind::Amount => Money::from_db(self.amount).serialize(serializer),
        }
    }
}

/// Whether `value` suits `kind`: a percentage is a whole number from 1 to 100; an amount
/// is any money amount (already positive, two decimals, within range).
pub(super) fn check_value(checks: &mut Checks, kind: Kind, value: Money) {
    if kind == Kind::Percent {
        let amount = value.amount();
        checks.check(
            amount.fract().is_zero() && amount <= Decimal::ONE_HUNDRED,
            "value",
            "a percent discount must be a whole number from 1 to 100",
        );
    }
}

/// Instants a `DATETIME(6)` column holds; anything else could not be stored as given.
fn check_instant(checks: &mut Checks, field: &str, at: Option<DateTime<Utc>>) {
    if let Some(at) = at {
        checks.check(
            (1970..=9999).contains(&at.year()),
            field,
            "must be between the years 1970 and 9999",
        );
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Discount {
    pub id: u64,
    pub code: String,
    pub kind: Kind,
    pub value: Value,
    pub min_subtotal: Option<Money>,
    #[serde(serialize_with = "timestamp")]
    pub starts_at: DateTime<Utc>,
    #[serde(serialize_with = "optional_timestamp")]
    pub ends_at: Option<DateTime<Utc>>,
    pub usage_limit: Option<u32>,
    pub per_customer_limit: Option<u32>,
    pub times_used: u32,
    pub active: bool,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDiscount {
    pub code: Code,
    pub kind: Kind,
    pub value: Money,
    #[serde(default)]
    pub min_subtotal: Option<Money>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "optional_whole")]
    pub usage_limit: Option<u32>,
    #[serde(default, deserialize_with = "optional_whole")]
    pub per_customer_limit: Option<u32>,
    #[serde(default)]
    pub active: Option<bool>,
}

impl Validate for NewDiscount {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        check_value(&mut checks, self.kind, self.value);
        check_instant(&mut checks, "starts_at", self.starts_at);
        check_instant(&mut checks, "ends_at", self.ends_at);
        check_limits(&mut checks, self.usage_limit, self.per_customer_limit);
        // Without `starts_at` the start is now, checked against `ends_at` when stored.
        if let (Some(starts), Some(ends)) = (self.starts_at, self.ends_at) {
            checks.check(ends > starts, "ends_at", "must be after starts_at");
        }
        checks.finish()
    }
}

fn check_limits(checks: &mut Checks, usage: Option<u32>, per_customer: Option<u32>) {
    if let Some(limit) = usage {
        checks.check(limit >= 1, "usage_limit", "must be at least 1");
    }
    if let Some(limit) = per_customer {
        checks.check(limit >= 1, "per_customer_limit", "must be at least 1");
    }
}

/// `PUT /discounts/{id}`: any field but `code`. Nullable fields take `null` to remove the
/// condition. The code is what customers were given: changing it would break their codes,
/// so it is refused rather than ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountPatch {
    #[serde(default)]
    pub code: Option<serde::de::IgnoredAny>,
    pub kind: Option<Kind>,
    pub value: Option<Money>,
    #[serde(default, deserialize_with = "nullable")]
    pub min_subtotal: Option<Option<Money>>,
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "nullable")]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable_whole")]
    pub usage_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable_whole")]
    pub per_customer_limit: Option<Option<u32>>,
    pub active: Option<bool>,
}

impl Validate for DiscountPatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        checks.check(self.code.is_none(), "code", "cannot be changed");
        let any = self.kind.is_some()
            || self.value.is_some()
            || self.min_subtotal.is_some()
            || self.starts_at.is_some()
            || self.ends_at.is_some()
            || self.usage_limit.is_some()
            || self.per_customer_limit.is_some()
            || self.active.is_some();
        checks.check(
            any || self.code.is_some(),
            "body",
            "must set at least one field",
        );
        check_instant(&mut checks, "starts_at", self.starts_at);
        check_instant(&mut checks, "ends_at", self.ends_at.flatten());
        check_limits(
            &mut checks,
            self.usage_limit.flatten(),
            self.per_customer_limit.flatten(),
        );
        checks.finish()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DiscountQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for DiscountQuery {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_cased_and_bounded() {
        assert_eq!(Code::parse("summer-10").unwrap().as_str(), "SUMMER-10");
        assert_eq!(Code::parse("ABC").unwrap().as_str(), "ABC");
        assert!(Code::parse(&"A".repeat(32)).is_some());
        for bad in ["AB", "", "SUMMER 10", "SOMMER_10", "ÉTÉ10", &"A".repeat(33)] {
            assert!(Code::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn percent_values_are_whole_and_at_most_100() {
        let check = |kind, text: &str| {
            let mut checks = Checks::new();
            check_value(&mut checks, kind, text.parse().unwrap());
            checks.finish().is_ok()
        };
        assert!(check(Kind::Percent, "15"));
        assert!(check(Kind::Percent, "100"));
        assert!(!check(Kind::Percent, "15.5"));
        assert!(!check(Kind::Percent, "101"));
        assert!(check(Kind::Amount, "150.25"));
    }
}
