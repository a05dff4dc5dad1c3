//! The non-HTTP triggers: timers, the reservation stream and the outbox relay.

pub mod gauges;
pub mod relay;
pub mod stream;
pub mod timer;
