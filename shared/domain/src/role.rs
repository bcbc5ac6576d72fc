//! Roles: what an account may do beyond its own resources.

use serde::{Deserialize, Serialize};

/// Read from a string whatever the JSON holds, so that `{"role": 1}` is invalid input naming
/// `role` like any other wrongly typed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase", try_from = "String")]
#[sqlx(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl TryFrom<String> for Role {
    type Error = &'static str;

    fn try_from(label: String) -> Result<Self, Self::Error> {
        match label.as_str() {
            "customer" => Ok(Role::Customer),
            "admin" => Ok(Role::Admin),
            _ => Err("must be one of customer, admin"),
        }
    }
}
