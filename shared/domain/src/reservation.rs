use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CategoryName, EventId, ReservationId, UserId};

/// The most tickets one reservation may hold.
pub const MAX_QTY_PER_REQUEST: u32 = 10;

bounded_count!(
    /// How many tickets a reservation holds: 1..=[`MAX_QTY_PER_REQUEST`].
    Qty,
    "qty",
    1,
    MAX_QTY_PER_REQUEST
);

/// The client's `Idempotency-Key`: a retry with the same key never holds twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let visible = |c: char| c.is_ascii_graphic();
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.chars().all(visible) {
            return Err(format!(
                "Idempotency-Key must be 1 to {} visible ASCII characters",
                Self::MAX_LEN
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a reservation is in its life. `Held` is the only state that can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Confirmed,
    Cancelled,
    Expired,
}

impl ReservationStatus {
    pub fn is_final(self) -> bool {
        self != Self::Held
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// A hold on tickets, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    #[serde(rename = "reservation_id")]
    pub id: ReservationId,
    pub event_id: EventId,
    pub category: CategoryName,
    pub user_id: UserId,
    pub qty: Qty,
    pub status: ReservationStatus,
    #[serde(deserialize_with = "time_or_millis")]
    pub created_at: DateTime<Utc>,
    /// The hold's deadline; after it the hold can only expire.
    #[serde(deserialize_with = "time_or_millis")]
    pub expires_at: DateTime<Utc>,
    #[serde(deserialize_with = "time_or_millis")]
    pub updated_at: DateTime<Utc>,
}

/// A time as RFC 3339 (how a reservation is shown and stored), or as milliseconds since the
/// epoch: how the Redis scripts write it, since they take their time from Redis and a
/// formatter in Lua cost every reserve microseconds of the one Redis thread.
fn time_or_millis<'de, D: serde::Deserializer<'de>>(input: D) -> Result<DateTime<Utc>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Time {
        Millis(i64),
        Text(DateTime<Utc>),
    }
    match Time::deserialize(input)? {
        Time::Text(time) => Ok(time),
        Time::Millis(millis) => DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| serde::de::Error::custom("a time out of range")),
    }
}

/// One message of the reservation stream: the reservation right after a state change
/// (its `status` is the state it moved to). `version` lets consumers refuse what they don't know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationEvent {
    pub version: u16,
    pub reservation: Reservation,
}

impl ReservationEvent {
    pub const VERSION: u16 = 1;

    /// The event that records `reservation` as it is now.
    pub fn of(reservation: &Reservation) -> Self {
        Self {
            version: Self::VERSION,
            reservation: reservation.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qty_is_bounded() {
        assert!(Qty::new(0).is_err());
        assert!(Qty::new(-3).is_err());
        assert!(Qty::new(i64::from(MAX_QTY_PER_REQUEST) + 1).is_err());
        assert_eq!(Qty::new(2).unwrap().get(), 2);
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("order-42").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }
}
