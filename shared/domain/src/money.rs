//! Money: exact decimals with at most two places, in euros.
//!
//! JSON carries money as a number (`19.99`). It is read from the literal text of the number,
//! never through a float, so `0.1` is exactly one tenth and `19.999` is refused, not rounded.

use std::fmt;
use std::str::FromStr;

pub use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The largest amount a `DECIMAL(12,2)` column holds.
pub const MAX: Decimal = Decimal::from_parts(0x540B_E3FF, 2, 0, false, 2); // 9_999_999_999 hundredths

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a number")]
    NotANumber,
    #[error("must have at most 2 decimal places")]
    TooPrecise,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must be at most 99999999.99")]
    TooLarge,
}

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// A positive amount with at most two decimals that fits the database.
    pub fn positive(value: Decimal) -> Result<Self, MoneyError> {
        if value.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        if value <= Decimal::ZERO {
            return Err(MoneyError::NotPositive);
        }
        if value > MAX {
            return Err(MoneyError::TooLarge);
        }
        Ok(Self::from_db(value))
    }

    /// A value read from a `DECIMAL(12,2)` column or computed from such values.
    pub fn from_db(value: Decimal) -> Self {
        let mut value = value;
        value.rescale(2);
        Self(value)
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    /// `None` when the result would not fit a `DECIMAL(12,2)` column.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        let sum = self.0.checked_add(other.0)?;
        (sum <= MAX).then(|| Self::from_db(sum))
    }

    pub fn checked_mul(self, quantity: u32) -> Option<Money> {
        let product = self.0.checked_mul(Decimal::from(quantity))?;
        (product <= MAX).then(|| Self::from_db(product))
    }
}

/// Parses the literal text of a JSON number or a query-string value: `12`, `12.5`, `1.25e1`.
impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let looks_numeric = text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
            && text.bytes().any(|b| b.is_ascii_digit());
        if !looks_numeric {
            return Err(MoneyError::NotANumber);
        }
        let value = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text)
        } else {
            Decimal::from_str_exact(text)
        };
        // A literal too long for Decimal's 28 digits is far beyond the allowed range anyway.
        let value = value.map_err(|_| {
            if text.starts_with('-') {
                MoneyError::NotPositive
            } else {
                MoneyError::TooLarge
            }
        })?;
        Money::positive(value)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The two-decimal text emitted as a raw JSON number: exact, no float in between.
        let text = self.to_string();
        RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        if text.starts_with('"') {
            return Err(D::Error::custom("must be a JSON number, not a string"));
        }
        text.parse().map_err(D::Error::custom)
    }
}

impl From<Money> for Decimal {
    fn from(money: Money) -> Decimal {
        money.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Money, String> {
        serde_json::from_str::<Money>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn cursor_amounts_fit_the_column() {
        assert_eq!(parse_cursor_value("19.99"), Some("19.99".parse().unwrap()));
        assert_eq!(parse_cursor_value("99999999.99"), Some(MAX));
        assert!(parse_cursor_value("0.00").is_some());
        for bad in [
            "100000000.00",
            "-1.00",
            "19.9",
            "19.999",
            "19",
            "+19.99",
            "019.99",
            "1e3",
            "NaN",
            "79228162514264337593543950335",
            "",
        ] {
            assert_eq!(parse_cursor_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_exact_two_decimal_numbers() {
        assert_eq!(parse("19.99").unwrap().to_string(), "19.99");
        assert_eq!(parse("0.1").unwrap().to_string(), "0.10");
        assert_eq!(parse("5").unwrap().to_string(), "5.00");
        assert_eq!(parse("1.5e1").unwrap().to_string(), "15.00");
        assert_eq!(parse("99999999.99").unwrap().to_string(), "99999999.99");
        // Trailing zeros are not extra precision.
        assert_eq!(parse("2.500").unwrap().to_string(), "2.50");
    }

    #[test]
    fn refuses_what_the_contract_refuses() {
        assert!(parse("19.999").unwrap_err().contains("at most 2 decimal"));
        assert!(parse("0").unwrap_err().contains("greater than 0"));
        assert!(parse("-1").unwrap_err().contains("greater than 0"));
        assert!(parse("100000000").unwrap_err().contains("at most"));
        assert!(parse("1e400").is_err());
        assert!(parse("123456789012345678901234567890123").is_err());
        assert!(parse("\"19.99\"").unwrap_err().contains("not a string"));
        assert!(parse("\"NaN\"").is_err());
        assert!(parse("null").is_err());
        assert!(parse("true").is_err());
        assert!("NaN".parse::<Money>().is_err());
        assert!("inf".parse::<Money>().is_err());
    }

    #[test]
    fn serialises_as_a_json_number_with_two_decimals() {
        let m = Money::from_db(Decimal::new(1999, 2));
        assert_eq!(serde_json::to_string(&m).unwrap(), "19.99");
        let whole = Money::from_db(Decimal::new(5, 0));
        assert_eq!(serde_json::to_string(&whole).unwrap(), "5.00");
    }

    #[test]
    fn arithmetic_is_exact_and_bounded() {
        let a: Money = "0.1".parse().unwrap();
        let b: Money = "0.2".parse().unwrap();
        assert_eq!(a.checked_add(b).unwrap().to_string(), "0.30");
        let big: Money = "99999999.99".parse().unwrap();
        assert!(big.checked_add(a).is_none());
        assert_eq!(a.checked_mul(3).unwrap().to_string(), "0.30");
        assert!(big.checked_mul(2).is_none());
    }
}

/// A cursor's amount (see `crate::page`): only as a `DECIMAL(12,2)` column gives it back,
/// with two decimals, and from 0 to [`MAX`], the most any amount may be.
pub fn parse_cursor_value(text: &str) -> Option<Decimal> {
    let value = Decimal::from_str_exact(text).ok()?;
    let holdable = value.scale() == 2 && value >= Decimal::ZERO && value <= MAX;
    (holdable && Money::from_db(value).to_string() == text).then_some(value)
}

/// An average rating (already rounded) as a plain JSON number, or `null`.
pub fn serialize_rating<S: Serializer>(
    rating: &Option<Decimal>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match rating {
        Some(value) => RawValue::from_string(value.normalize().to_string())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer),
        None => serializer.serialize_none(),
    }
}

/// A price bound in a query string (`min_price=10`, `max_price=19.99`): zero or more,
/// written as a plain decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd)]
pub struct PriceBound(pub Decimal);

impl<'de> Deserialize<'de> for PriceBound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let value = Decimal::from_str_exact(text.trim())
            .map_err(|_| D::Error::custom("must be a decimal number"))?;
        if value < Decimal::ZERO {
            return Err(D::Error::custom("must not be negative"));
        }
        Ok(PriceBound(value))
    }
}

impl sqlx::Type<sqlx::MySql> for Money {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <Decimal as sqlx::Type<sqlx::MySql>>::type_info()
    }

    fn compatible(ty: &sqlx::mysql::MySqlTypeInfo) -> bool {
        <Decimal as sqlx::Type<sqlx::MySql>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::MySql> for Money {
    fn decode(value: sqlx::mysql::MySqlValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Money::from_db(
            <Decimal as sqlx::Decode<sqlx::MySql>>::decode(value)?,
        ))
    }
}
