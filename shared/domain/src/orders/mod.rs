//! Orders: lines with prices as bought, stock taken in the order's transaction, the status
//! machine, the expiry of stock holds, and their SQL.

pub mod admission;
pub mod create;
pub mod history;
pub mod lifecycle;
pub mod listing;
pub mod load;
pub mod model;
mod resolve;
pub mod status;

pub use crate::settings::OrderLimits as Limits;
pub use create::{Buyer, Placed, place};
pub use history::{Actor, HistoryEntry};
pub use lifecycle::{delete, expire_due, set_status, settle, settle_due_of_user};
pub use listing::{get_for, list_for_user, recent_for_user};
pub use load::get;
pub use model::{
    Item, LineRequest, MAX_LINES, MAX_QUANTITY, NewOrder, Order, OrderLine, OrderQuery,
    OrderSummary, WantedLine, merge,
};
pub use status::{Status, StatusChange, Transition, transition};
