//! Discount codes: what a code takes off an order, the limits on its use, and their SQL.
//!
//! A use is counted on the discount row, locked, in the transaction of the order that uses
//! it ([`redeem`]), and given back in the transaction that cancels or deletes that order
//! ([`give_back`]); see the lock order in [`crate::stock`].

mod model;
mod redeem;
mod store;

pub use model::{
    Code, Discount, DiscountPatch, DiscountQuery, Kind, MAX_CODE_CHARS, MIN_CODE_CHARS,
    NewDiscount, Value,
};
pub use redeem::{Applied, Priced, give_back, price, price_order, redeem};
pub use store::{create, delete, get, list, update};
