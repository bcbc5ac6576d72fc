//! Users: accounts, roles, login throttling and the token version that revokes old tokens.

pub mod account;
pub mod client;
pub mod deletion;
pub mod login;
pub mod manage;
pub mod model;

pub use account::{Email, Password};
pub use client::ClientAddress;
pub use deletion::delete;
pub use login::{
    Account, Credentials, MAX_FAILED_LOGINS, MAX_FAILED_LOGINS_PER_ADDRESS, THROTTLE_WINDOW_SECS,
    login,
};
pub use manage::{get, profile, register, require_existing_user, update, upsert_admin};
pub use model::{Profile, Registration, User, UserPatch};
