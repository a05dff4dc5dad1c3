//! The non-HTTP triggers: a timer and the reservation stream.

pub mod stream;
pub mod timer;
