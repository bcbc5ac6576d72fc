//! Webhooks: signed deliveries of events to endpoints that admins register.
//!
//! The pipeline, the same on AWS and locally:
//! 1. [`relay`] publishes committed events (see [`crate::events`]), creates one delivery
//!    per event and subscribed endpoint in the same transaction, and hands due deliveries
//!    to a queue (SQS on AWS, an in-process channel locally), leased so that a relay
//!    running every second or every minute does not hand one out twice;
//! 2. [`delivery`] takes a message, POSTs the event signed (Standard Webhooks) through the
//!    guarded client of `platform::outbound`, records the attempt and schedules the next
//!    one ([`schedule`]); an endpoint failing for three days is disabled;
//! 3. [`worker`] runs both on timers for `make run`.
//!
//! The database is the source of truth throughout: a queue message only says which
//! delivery to attempt, so losing one, or killing any piece midway, delays a delivery and
//! never loses it. Receivers get each event at least once (deduplicated by `webhook-id`).

pub mod deliveries;
pub mod delivery;
pub mod endpoints;
pub mod lease;
pub mod relay;
pub mod schedule;
pub mod worker;
