//! Accounts as the API shows them, and the requests that create and change them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::account::{Email, MAX_PASSWORD_CHARS, Password};
use crate::error::FieldError;
use crate::orders::OrderSummary;
use crate::role::Role;
use crate::time::timestamp;
use crate::validate::{Checks, Validate};

/// A user as the API shows it: never a password or hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub role: Role,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// `GET /users/{id}`: the user and their latest orders.
#[derive(Debug, Serialize)]
pub struct Profile {
    #[serde(flatten)]
    pub user: User,
    pub orders: Vec<OrderSummary>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub name: String,
    pub email: String,
    pub password: String,
}

impl Validate for Registration {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        checks.text("name", &self.name, 1, 100);
        check_email(&mut checks, &self.email);
        check_password(&mut checks, &self.password);
        checks.finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub role: Option<Role>,
    /// Required when callers change their own email or password: a stolen token alone
    /// must not be enough to take an account over (OWASP ASVS V2.1.6).
    pub current_password: Option<String>,
}

impl Validate for UserPatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        let empty = self.name.is_none()
            && self.email.is_none()
            && self.password.is_none()
            && self.role.is_none();
        checks.check(!empty, "body", "must set at least one field");
        if let Some(name) = &self.name {
            checks.text("name", name, 1, 100);
        }
        if let Some(email) = &self.email {
            check_email(&mut checks, email);
        }
        if let Some(password) = &self.password {
            check_password(&mut checks, password);
        }
        if let Some(current) = &self.current_password {
            checks.text("current_password", current, 1, MAX_PASSWORD_CHARS);
        }
        checks.finish()
    }
}

fn check_email(checks: &mut Checks, email: &str) {
    if let Err(message) = Email::parse(email) {
        checks.check(false, "email", message);
    }
}

fn check_password(checks: &mut Checks, password: &str) {
    if let Err(message) = Password::parse(password.to_string()) {
        checks.check(false, "password", message);
    }
}
