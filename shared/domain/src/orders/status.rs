//! The order status machine: the statuses, who may move an order between them, and what
//! each move does.

use serde::{Deserialize, Deserializer, Serialize};

use crate::caller::Caller;
use crate::error::{Conflict, Error, FieldError, Result};
use crate::validate::{Checks, Validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Paid,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

impl Status {
    /// English names and the French labels shop back offices use.
    fn parse(label: &str) -> Option<Status> {
        Some(match label.trim().to_lowercase().as_str() {
            "pending" | "en attente" => Status::Pending,
            "paid" | "payée" | "payee" => Status::Paid,
            "processing" | "en traitement" => Status::Processing,
            "shipped" | "expédiée" | "expediee" => Status::Shipped,
            "delivered" | "livrée" | "livree" => Status::Delivered,
            "cancelled" | "annulée" | "annulee" => Status::Cancelled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Processing => "processing",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(label: String) -> Result<Self, String> {
        Status::parse(&label).ok_or_else(|| format!("unknown order status {label:?}"))
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let label = String::deserialize(deserializer)?;
        Status::parse(&label).ok_or_else(|| {
            serde::de::Error::custom(
                "must be one of pending, paid, processing, shipped, delivered, cancelled",
            )
        })
    }
}

/// What a status change does besides writing the new status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The order already has the requested status.
    Unchanged,
    Move,
    /// Stock goes back to the shelf and completed payments are refunded.
    Cancel,
}

/// The one place that decides whether `caller` may move an order from `from` to `to`.
/// A customer may only cancel a pending order; the fulfilment steps and cancelling a paid
/// order are for admins (forbidden to a customer); `paid` is reached only through payments.
pub fn transition(caller: &Caller, from: Status, to: Status) -> Result<Transition> {
    use Status::*;
    if from == to {
        return Ok(Transition::Unchanged);
    }
    let (admin_only, effect) = match (from, to) {
        (Pending, Cancelled) => (false, Transition::Cancel),
        (Paid | Processing, Cancelled) => (true, Transition::Cancel),
        (Paid, Processing) | (Processing, Shipped) | (Shipped, Delivered) => {
            (true, Transition::Move)
        }
        _ => {
            return Err(Error::conflict(
                Conflict::InvalidStatusTransition,
                format!(
                    "An order cannot go from {} to {}.",
                    from.as_str(),
                    to.as_str()
                ),
            ));
        }
    };
    if admin_only && !caller.is_admin() {
        return Err(Error::Forbidden(
            "Only an admin may make this status change.",
        ));
    }
    Ok(effect)
}

/// `PUT /orders/{id}`: the status wanted and, with `shipped`, the parcel's tracking number.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: Status,
    #[serde(default)]
    pub tracking_number: Option<String>,
}

impl Validate for StatusChange {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut checks = Checks::new();
        if let Some(tracking) = &self.tracking_number {
            checks.text("tracking_number", tracking, 1, 100).check(
                self.status == Status::Shipped,
                "tracking_number",
                "may only be given with the status shipped",
            );
        }
        checks.finish()
    }
}
