//! Keyset pagination: opaque cursors, page sizes, and the SQL that walks an index.
//!
//! A cursor names the sort it belongs to and the (sort value, id) of the last item served;
//! the next page starts strictly after it. Cost does not grow with depth, and ties on the
//! sort value are broken by id so a walk never skips or repeats an item.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::{MySql, QueryBuilder};

use crate::error::Error;

/// `{"items": [...], "next_cursor": "..." | null}`
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The `limit` query parameter: 1..=100, 20 when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 100;

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(20)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u32::deserialize(deserializer)?;
        if (1..=Self::MAX).contains(&value) {
            Ok(Limit(value))
        } else {
            Err(serde::de::Error::custom("must be between 1 and 100"))
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorData {
    /// The sort the cursor was made for; replaying it under another sort is an error.
    s: String,
    /// The last item's sort value, as text (timestamps, decimals and names all round-trip).
    v: String,
    i: u64,
}

/// The position after the last item of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub value: String,
    pub id: u64,
}

impl Cursor {
    pub fn encode(sort: &str, value: String, id: u64) -> String {
        let data = CursorData {
            s: sort.to_string(),
            v: value,
            i: id,
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).expect("a cursor always serialises"))
    }

    /// Decodes a cursor made for `sort`; anything else is the client's 400.
    pub fn decode(sort: &str, text: &str) -> Result<Cursor, Error> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid_cursor())?;
        let data: CursorData = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
        if data.s != sort || data.i == 0 {
            return Err(invalid_cursor());
        }
        Ok(Cursor {
            value: data.v,
            id: data.i,
        })
    }
}

/// The 400 for a cursor that this listing did not make.
pub fn invalid_cursor() -> Error {
    Error::invalid("cursor", "is not a cursor from this listing")
}

/// One way to order a listing: a column (always with `id` as tie-breaker) and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    /// The qualified column, e.g. `p.price`. Must come from code, never from input.
    pub column: &'static str,
    /// The id column of the same table, e.g. `p.id`.
    pub id_column: &'static str,
    pub descending: bool,
}

impl Keyset {
    /// Appends `AND (col > ? OR (col = ? AND id > ?))` (or `<` when descending).
    /// The expanded form, unlike a row comparison, is turned into an index range by both
    /// MySQL and MariaDB.
    pub fn push_after<'a, V>(&self, qb: &mut QueryBuilder<'a, MySql>, value: V, id: u64)
    where
        V: 'a + sqlx::Encode<'a, MySql> + sqlx::Type<MySql> + Clone + Send,
    {
        let op = if self.descending { " < " } else { " > " };
        qb.push(" AND (")
            .push(self.column)
            .push(op)
            .push_bind(value.clone())
            .push(" OR (")
            .push(self.column)
            .push(" = ")
            .push_bind(value)
            .push(" AND ")
            .push(self.id_column)
            .push(op)
            .push_bind(id)
            .push("))");
    }

    /// For listings ordered by a `DATETIME(6)` column: continues after `cursor`, if given.
    pub fn push_time_cursor(
        &self,
        qb: &mut QueryBuilder<'_, MySql>,
        sort: &str,
        cursor: Option<&str>,
    ) -> Result<(), Error> {
        if let Some(text) = cursor {
            let cursor = Cursor::decode(sort, text)?;
            let at = crate::time::parse_cursor_value(&cursor.value).ok_or_else(invalid_cursor)?;
            self.push_after(qb, at, cursor.id);
        }
        Ok(())
    }

    /// Appends `ORDER BY col dir, id dir LIMIT n` (one extra row tells if a next page exists).
    pub fn push_order_and_limit(&self, qb: &mut QueryBuilder<'_, MySql>, limit: Limit) {
        let dir = if self.descending { " DESC" } else { " ASC" };
        qb.push(" ORDER BY ")
            .push(self.column)
            .push(dir)
            .push(", ")
            .push(self.id_column)
            .push(dir)
            .push(" LIMIT ")
            .push_bind(limit.get() + 1);
    }
}

/// Trims the extra row fetched by [`Keyset::push_order_and_limit`] and makes the cursor.
pub fn into_page<T>(
    mut rows: Vec<T>,
    limit: Limit,
    sort: &str,
    position: impl Fn(&T) -> (String, u64),
) -> Page<T> {
    let next_cursor = if rows.len() > limit.get() as usize {
        rows.truncate(limit.get() as usize);
        rows.last().map(|last| {
            let (value, id) = position(last);
            Cursor::encode(sort, value, id)
        })
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_sorts() {
        let text = Cursor::encode("price", "19.99".into(), 42);
        let cursor = Cursor::decode("price", &text).unwrap();
        assert_eq!(
            cursor,
            Cursor {
                value: "19.99".into(),
                id: 42
            }
        );
        assert!(Cursor::decode("-price", &text).is_err());
        assert!(Cursor::decode("price", "not a cursor").is_err());
        assert!(Cursor::decode("price", "").is_err());
    }

    #[test]
    fn limit_bounds() {
        let parse = |s: &str| serde_json::from_str::<Limit>(s);
        assert_eq!(parse("1").unwrap().get(), 1);
        assert_eq!(parse("100").unwrap().get(), 100);
        assert!(parse("0").is_err());
        assert!(parse("101").is_err());
        assert!(parse("-1").is_err());
        assert_eq!(Limit::default().get(), 20);
    }
}
