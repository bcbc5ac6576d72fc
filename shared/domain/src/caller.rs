//! Who is asking, and the rules of who may touch what.

use sqlx::MySqlPool;

use crate::error::{Error, Result};
use crate::role::Role;

/// A bearer token's account and version: its signature and expiry are checked, the account
/// not yet. [`Claimed::confirm`] confirms it with one read; a transaction that locks
/// the account's row anyway confirms it with that lock
/// ([`crate::orders::admission::admit_claimed`]), which spares a request a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    pub id: u64,
    pub token_version: u32,
}

impl Claimed {
    /// The caller this token names, if the account still exists and the token is of its
    /// current version (a password change or a logout everywhere raises it). The role is the
    /// row's, not the token's, so a demotion applies at once.
    pub async fn confirm(self, pool: &MySqlPool) -> Result<Caller> {
        let row = sqlx::query!(
            r#"SELECT role AS "role: Role", token_version FROM users WHERE id = ?"#,
            self.id
        )
        .fetch_optional(pool)
        .await?;
        match row {
            Some(row) if row.token_version == self.token_version => Ok(Caller {
                id: self.id,
                role: row.role,
            }),
            _ => Err(Error::AccountGone),
        }
    }
}

/// The authenticated caller of a domain function: an account id and its current role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub id: u64,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Admin-only actions: a customer is forbidden.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden("This action requires an admin."))
        }
    }

    /// Resources under `/users/{user_id}`: a customer naming someone else gets the "not
    /// found" a missing user would get, so ids of other customers reveal nothing.
    pub fn require_self_or_admin(&self, user_id: u64) -> Result<(), Error> {
        self.require_owner_or_admin(user_id, "user")
    }

    /// Resources that belong to a user (orders, payments): another customer's is "not
    /// found", and so is one whose owner deleted their account (`None`), which only admins
    /// may see.
    pub fn require_owner_or_admin(
        &self,
        owner_id: impl Into<Option<u64>>,
        what: &'static str,
    ) -> Result<(), Error> {
        if self.is_admin() || owner_id.into() == Some(self.id) {
            Ok(())
        } else {
            Err(Error::NotFound(what))
        }
    }

    /// A body's optional `user_id`: defaults to the caller; naming another user is
    /// forbidden for a customer (the contract's rule for bodies, unlike paths).
    pub fn acting_for(&self, user_id: Option<u64>) -> Result<u64, Error> {
        match user_id {
            None => Ok(self.id),
            Some(id) if id == self.id || self.is_admin() => Ok(id),
            Some(_) => Err(Error::Forbidden("A customer may only act for themselves.")),
        }
    }
}
