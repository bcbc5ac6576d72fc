//! Resource ids: positive integers that fit `BIGINT UNSIGNED`.

use serde::{Deserialize, Deserializer};

use crate::validate::WholeVisitor;

/// A resource id, wherever it comes from: a path segment (`/orders/7`), a query value or a
/// JSON body (`"product_id": 7`, where `7.0` is the same number). Zero is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Id(pub u64);

impl Id {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The u64 hint lets text formats (paths, queries) parse the digits themselves.
        match deserializer.deserialize_u64(WholeVisitor)? {
            0 => Err(serde::de::Error::custom("must be a positive integer id")),
            id => Ok(Id(id)),
        }
    }
}

impl From<Id> for u64 {
    fn from(id: Id) -> u64 {
        id.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Bound as the `BIGINT UNSIGNED` it is.
impl sqlx::Type<sqlx::MySql> for Id {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <u64 as sqlx::Type<sqlx::MySql>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::MySql> for Id {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<u8>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <u64 as sqlx::Encode<'q, sqlx::MySql>>::encode_by_ref(&self.0, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_whole_numbers() {
        let parse = |json: &str| serde_json::from_str::<Id>(json);
        assert_eq!(parse("7").unwrap(), Id(7));
        assert_eq!(parse("7.0").unwrap(), Id(7));
        assert!(parse("0").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("1.5").is_err());
        assert!(parse("\"7\"").is_err());
    }
}
