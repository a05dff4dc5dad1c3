//! Domain types. Each one is built by a parser that can fail ("parse, don't validate"), so
//! the rest of the code never checks a value twice. Request bodies deserialise straight into
//! them, and the parser's message becomes the 400 the caller sees.

mod catalogue;
mod ids;
mod reservation;
mod stock;

pub use catalogue::{
    Category, CategoryName, Event, EventName, PerUserLimit, Price, TotalStock, Venue, rfc3339,
};
pub use ids::{EventId, ReservationId, UserId};
pub use reservation::{
    IdempotencyKey, MAX_QTY_PER_REQUEST, Qty, Reservation, ReservationEvent, ReservationStatus,
};
pub use stock::StockCounts;

/// Trims `raw` and checks it is 1..=`max` characters without control characters.
fn parse_text(field: &str, raw: &str, max: usize) -> Result<String, String> {
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
    Ok(text.to_owned())
}
