//! The domain: its types, the contracts functions call (traits), the one error shape every
//! function returns, and time. No I/O: a function crate depends on this alone, and the
//! runtime wires adapters (memory, Redis, Kafka, PostgreSQL) to the contracts.
//!
//! Each type is built by a parser that can fail ("parse, don't validate"), so the rest of the
//! code never checks a value twice. Request bodies deserialise straight into them, and the
//! parser's message becomes the 400 the caller sees.

/// A count a client sends as a JSON integer, bounded to `min..=max`; the parser's message
/// names the field.
macro_rules! bounded_count {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(try_from = "i64", into = "u32")]
        pub struct $name(u32);

        impl $name {
            pub fn new(count: i64) -> Result<Self, String> {
                match u32::try_from(count) {
                    Ok(count) if ($min..=$max).contains(&count) => Ok(Self(count)),
                    _ => Err(format!("{} must be between {} and {}", $field, $min, $max)),
                }
            }

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = String;
            fn try_from(count: i64) -> Result<Self, String> {
                Self::new(count)
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.0
            }
        }
    };
}

mod caller;
mod catalogue;
pub mod clock;
pub mod context;
pub mod contracts;
pub mod dependency;
pub mod error;
mod ids;
mod reservation;
pub mod sold_out;
mod stock;
pub mod waiting_room;

pub use caller::{Caller, Role};
pub use catalogue::{
    Category, CategoryName, Event, EventName, PerUserLimit, Price, TotalStock, Venue, rfc3339,
};
pub use ids::{EventId, ReservationId, UserId};
pub use reservation::{
    IdempotencyKey, MAX_QTY_PER_REQUEST, Qty, Reservation, ReservationEvent, ReservationStatus,
};
pub use sold_out::SoldOutHints;
pub use stock::StockCounts;

pub use context::Context;
pub use error::{ApiError, ErrorKind};

/// Trims `raw` and checks it is 1..=`max` characters without control characters.
fn parse_text(field: &str, raw: &str, max: usize) -> Result<String, String> {
    checked_text(field, raw, max).map(str::to_owned)
}

/// `parse_text` of a string already owned: kept as it is when there is nothing to trim, so
/// a field read from JSON is not copied again.
fn parse_owned_text(field: &str, raw: String, max: usize) -> Result<String, String> {
    let text = checked_text(field, &raw, max)?;
    if text.len() == raw.len() {
        return Ok(raw);
    }
    Ok(text.to_owned())
}

fn checked_text<'a>(field: &str, raw: &'a str, max: usize) -> Result<&'a str, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if text.chars().count() > max {
        return Err(format!("{field} must be at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(text)
}
