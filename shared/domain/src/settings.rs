//! The shop's own settings, read at cold start beside the platform's: what every new order
//! is held to.

use std::time::Duration;

use platform::config::{ConfigError, seconds};

/// Default stock hold of a pending order: 30 minutes, long enough to pay, short enough
/// that an abandoned order does not keep goods off the shelf for long.
pub const DEFAULT_ORDER_HOLD: Duration = Duration::from_secs(1800);
/// Longest accepted hold: a week.
pub const MAX_ORDER_HOLD_SECS: u64 = 7 * 24 * 3600;
/// Pending orders one customer may hold at once by default: enough to shop in several
/// tabs, too few for one account to hold a product's whole stock. 1 to 10 000 accepted.
pub const DEFAULT_MAX_PENDING_ORDERS: u32 = 10;

/// What the shop's configuration says about every new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLimits {
    /// How long a pending order holds its stock (`ORDER_HOLD_SECONDS`).
    pub hold: Duration,
    /// How many pending orders one customer (the owner, whoever places them) may hold
    /// (`MAX_PENDING_ORDERS`).
    pub max_pending: u32,
}

impl Default for OrderLimits {
    fn default() -> Self {
        Self {
            hold: DEFAULT_ORDER_HOLD,
            max_pending: DEFAULT_MAX_PENDING_ORDERS,
        }
    }
}

impl OrderLimits {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var`, so tests can supply their own environment.
    pub fn from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            hold: order_hold(var)?,
            max_pending: max_pending_orders(var)?,
        })
    }
}

/// `ORDER_HOLD_SECONDS`: 1 second to a week, [`DEFAULT_ORDER_HOLD`] when unset.
pub fn order_hold(var: &impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    Ok(seconds(var, "ORDER_HOLD_SECONDS", 1, MAX_ORDER_HOLD_SECS)?.unwrap_or(DEFAULT_ORDER_HOLD))
}

/// `MAX_PENDING_ORDERS`: 1 to 10 000, [`DEFAULT_MAX_PENDING_ORDERS`] when unset.
fn max_pending_orders(var: &impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    let Some(value) = var("MAX_PENDING_ORDERS") else {
        return Ok(DEFAULT_MAX_PENDING_ORDERS);
    };
    let cap = value.parse().ok().filter(|n| (1..=10_000).contains(n));
    cap.ok_or(ConfigError::Invalid {
        name: "MAX_PENDING_ORDERS",
        reason: "must be a whole number between 1 and 10000".into(),
    })
}
