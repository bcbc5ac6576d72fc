//! Address books: up to [`MAX_PER_USER`] shipping addresses per user, and the copy of one
//! that an order keeps for itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlPool, QueryBuilder};

use crate::error::{Conflict, Error, FieldError, Result};
use crate::page::{Keyset, Limit, Page, into_page};
use crate::stock;
use crate::time::timestamp;
use crate::validate::{Checks, Validate};
use platform::db::{self, Tx};

/// How many addresses one user may keep.
pub const MAX_PER_USER: i64 = 20;

/// An address in a user's book.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Address {
    pub id: u64,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub phone: Option<String>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

/// The fields of an address: a new entry of the book, or an order's shipping address given
/// inline. Also what an order keeps, copied, as its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostalAddress {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    #[serde(default)]
    pub phone: Option<String>,
}

impl PostalAddress {
    /// Every broken rule, each field named under `prefix` (`""` or `"shipping_address."`).
    pub fn check(&self, checks: &mut Checks, prefix: &str) {
        let field = |name: &str| format!("{prefix}{name}");
        checks
            .text(&field("name"), &self.name, 1, 100)
            .text(&field("line1"), &self.line1, 1, 200)
            .optional_text(&field("line2"), self.line2.as_deref(), 200)
            .text(&field("postal_code"), &self.postal_code, 1, 20)
            .text(&field("city"), &self.city, 1, 100)
            .optional_text(&field("phone"), self.phone.as_deref(), 30);
        checks.check(
            country(&self.country).is_some(),
            &field("country"),
            "must be an ISO 3166-1 alpha-2 country code, such as FR or DE",
        );
    }

    /// The same address with its country code as stored: upper-case.
    fn normalized(&self) -> PostalAddress {
        PostalAddress {
            country: country(&self.country).unwrap_or_default(),
            ..self.clone()
        }
    }
}

impl Validate for PostalAddress {
    fn validate(&self) -> std::result::Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        self.check(&mut checks, "");
        checks.finish()
    }
}

/// An ISO 3166-1 alpha-2 code from the maintained list (which also carries XK, the code
/// carriers use for Kosovo), upper-cased; `None` for anything else.
fn country(code: &str) -> Option<String> {
    (code.len() == 2)
        .then(|| celes::Country::from_alpha2(code).ok())
        .flatten()
        .map(|c| c.alpha2.to_string())
}

#[derive(Debug, Default, Deserialize)]
pub struct AddressQuery {
    #[serde(default)]
    pub limit: Limit,
    pub cursor: Option<String>,
}

impl Validate for AddressQuery {}

const LIST_SORT: &str = "-created_at";
const LIST_ORDER: Keyset = Keyset {
    column: "a.created_at",
    id_column: "a.id",
    descending: true,
};

/// A user's addresses, newest first.
pub async fn list(pool: &MySqlPool, user_id: u64, query: &AddressQuery) -> Result<Page<Address>> {
    let mut qb: QueryBuilder<MySql> = QueryBuilder::new(
        "SELECT a.id, a.name, a.line1, a.line2, a.postal_code, a.city, a.country, a.phone, a.created_at \
         FROM addresses a WHERE a.user_id = ",
    );
    qb.push_bind(user_id);
    LIST_ORDER.push_time_cursor(&mut qb, LIST_SORT, query.cursor.as_deref())?;
    LIST_ORDER.push_order_and_limit(&mut qb, query.limit);
    let rows: Vec<Address> = qb.build_query_as().fetch_all(pool).await?;
    Ok(into_page(rows, query.limit, LIST_SORT, |a| {
        (crate::time::cursor_value(a.created_at), a.id)
    }))
}

/// Adds an address to a user's book; a full book (20) is a conflict. The user row is locked
/// while the book is counted, so parallel additions cannot pass the limit together.
pub async fn create(pool: &MySqlPool, user_id: u64, input: PostalAddress) -> Result<Address> {
    let input = input.normalized();
    db::transaction(pool, |tx| {
        let input = input.clone();
        Box::pin(async move {
            if !stock::lock_user_exclusive(tx, user_id).await? {
                return Err(Error::NotFound("user"));
            }
            let count: i64 = sqlx::query_scalar!(
                "SELECT COUNT(*) FROM addresses WHERE user_id = ?",
                user_id
            )
            .fetch_one(&mut **tx)
            .await?;
            if count >= MAX_PER_USER {
                return Err(Error::conflict(
                    Conflict::AddressLimit,
                    format!("An address book holds at most {MAX_PER_USER} addresses; delete one first."),
                ));
            }
            let id = sqlx::query!(
                "INSERT INTO addresses (user_id, name, line1, line2, postal_code, city, country, phone)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                user_id,
                input.name,
                input.line1,
                input.line2,
                input.postal_code,
                input.city,
                input.country,
                input.phone
            )
            .execute(&mut **tx)
            .await?
            .last_insert_id();
            read(tx, user_id, id).await?.ok_or(Error::NotFound("address"))
        })
    })
    .await
}

/// Removes an address from its owner's book; orders that shipped to it keep their copy.
pub async fn delete(pool: &MySqlPool, user_id: u64, id: u64) -> Result<()> {
    let deleted = sqlx::query!(
        "DELETE FROM addresses WHERE id = ? AND user_id = ?",
        id,
        user_id
    )
    .execute(pool)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound("address"));
    }
    Ok(())
}

async fn read(tx: &mut Tx<'static>, user_id: u64, id: u64) -> Result<Option<Address>> {
    Ok(sqlx::query_as!(
        Address,
        r#"SELECT id, name, line1, line2, postal_code, city, country,
                  phone, created_at AS "created_at: DateTime<Utc>"
           FROM addresses WHERE id = ? AND user_id = ?"#,
        id,
        user_id
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Where an order ships: one of the owner's addresses, or one given with the order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Shipping {
    #[default]
    Nowhere,
    Saved(u64),
    Given(PostalAddress),
}

impl Shipping {
    /// The choice a request made (both at once is refused by its validation).
    pub fn of(saved: Option<u64>, given: Option<&PostalAddress>) -> Shipping {
        match (saved, given) {
            (Some(id), _) => Shipping::Saved(id),
            (None, Some(address)) => Shipping::Given(address.clone()),
            (None, None) => Shipping::Nowhere,
        }
    }

    /// The copy the order keeps. A saved address must be the owner's: another's, or an
    /// unknown one, is invalid input, named `shipping_address_id`.
    pub async fn resolve(&self, tx: &mut Tx<'static>, owner: u64) -> Result<Option<PostalAddress>> {
        match self {
            Shipping::Nowhere => Ok(None),
            Shipping::Given(address) => Ok(Some(address.normalized())),
            Shipping::Saved(id) => match read(tx, owner, *id).await? {
                Some(a) => Ok(Some(PostalAddress {
                    name: a.name,
                    line1: a.line1,
                    line2: a.line2,
                    postal_code: a.postal_code,
                    city: a.city,
                    country: a.country,
                    phone: a.phone,
                })),
                None => Err(Error::invalid(
                    "shipping_address_id",
                    "is not one of the order owner's addresses",
                )),
            },
        }
    }
}

/// The body rule of orders and checkouts: one way of giving the address at most.
pub fn check_choice(checks: &mut Checks, saved: Option<u64>, given: Option<&PostalAddress>) {
    checks.check(
        !(saved.is_some() && given.is_some()),
        "shipping_address",
        "give shipping_address_id or shipping_address, not both",
    );
    if let Some(address) = given {
        address.check(checks, "shipping_address.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_the_iso_list_in_any_case() {
        assert_eq!(country("fr").as_deref(), Some("FR"));
        assert_eq!(country("De").as_deref(), Some("DE"));
        for refused in ["", "F", "FRA", "XX", "ZZ", "UK", "é", "1A"] {
            assert_eq!(country(refused), None, "{refused:?}");
        }
    }

    /// The contract lists the codes this accepts, so that clients can offer exactly them.
    #[test]
    fn the_contract_lists_exactly_the_accepted_codes() {
        let spec: serde_json::Value = serde_json::from_str(include_str!("../../../openapi.json"))
            .expect("openapi.json is JSON");
        let listed: Vec<&str> = spec["components"]["schemas"]["CountryCode"]["enum"]
            .as_array()
            .expect("CountryCode lists its codes")
            .iter()
            .map(|code| code.as_str().unwrap())
            .collect();
        let mut accepted: Vec<&str> = celes::Country::get_countries()
            .iter()
            .map(|c| c.alpha2)
            .collect();
        accepted.sort_unstable();
        assert_eq!(listed, accepted);
    }
}
