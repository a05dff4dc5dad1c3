use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identifies an event. UUIDv7, so ids sort by creation time (kind to database indexes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

/// Identifies one reservation (hold) through its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReservationId(pub Uuid);

macro_rules! uuid_id {
    ($name:ident, $what:literal) => {
        impl $name {
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(raw: &str) -> Result<Self, String> {
                Uuid::try_parse(raw)
                    .map(Self)
                    .map_err(|_| format!("{} must be a UUID", $what))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(EventId, "event id");
uuid_id!(ReservationId, "reservation id");

impl ReservationId {
    /// A fresh id whose last byte is `route`: a store that spreads reservations over shards
    /// finds a reservation's shard from its id alone. 66 random bits remain beside the
    /// millisecond timestamp, so ids stay unique.
    pub fn generate_routed(route: u8) -> Self {
        let mut bytes = *Uuid::now_v7().as_bytes();
        bytes[15] = route;
        Self(Uuid::from_bytes(bytes))
    }

    /// The last byte, as [`generate_routed`](Self::generate_routed) set it.
    pub fn route(&self) -> u8 {
        self.0.as_bytes()[15]
    }
}

/// The subject (`sub`) of a verified token: who is buying.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN || raw.chars().any(char::is_control) {
            return Err(format!(
                "subject must be 1 to {} printable characters",
                Self::MAX_LEN
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
