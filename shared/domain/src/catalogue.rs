use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EventId, parse_owned_text, parse_text};

/// An event (a concert) that tickets are sold for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub name: EventName,
    pub date: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<Venue>,
}

/// A kind of ticket in an event ("Floor", "Balcony") with its fixed stock and price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub event_id: EventId,
    pub name: CategoryName,
    pub total_stock: TotalStock,
    pub price: Price,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_user: Option<PerUserLimit>,
}

macro_rules! text_type {
    ($name:ident, $field:literal, $max:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, String> {
                parse_text($field, raw, Self::MAX_LEN).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                parse_owned_text($field, raw, Self::MAX_LEN).map(Self)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(EventName, "name", 200);
text_type!(Venue, "venue", 200);
text_type!(CategoryName, "category", 64);

bounded_count!(
    /// How many tickets a category has in all; fixed when the category is created.
    TotalStock,
    "total_stock",
    0,
    TotalStock::MAX
);

impl TotalStock {
    pub const MAX: u32 = 10_000_000;
}

bounded_count!(
    /// Tickets one user may hold and buy in a category, live holds and purchases together.
    PerUserLimit,
    "max_per_user",
    1,
    TotalStock::MAX
);

/// Reads a date that must be RFC 3339 (`2026-06-01T20:00:00Z`, `...+02:00`), into UTC.
pub fn rfc3339<'de, D: serde::Deserializer<'de>>(input: D) -> Result<DateTime<Utc>, D::Error> {
    let raw = <std::borrow::Cow<'de, str>>::deserialize(input)?;
    DateTime::parse_from_rfc3339(&raw)
        .map(|date| date.with_timezone(&Utc))
        .map_err(|_| serde::de::Error::custom("date must be an RFC 3339 timestamp"))
}

/// A ticket price in cents, given and shown as a decimal number with at most two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Price {
    cents: u64,
}

impl Price {
    /// 100 million in cents.
    pub const MAX_CENTS: u64 = 10_000_000_000;

    pub fn from_cents(cents: u64) -> Result<Self, String> {
        if cents > Self::MAX_CENTS {
            return Err(format!("price must be at most {}", Self::MAX_CENTS / 100));
        }
        Ok(Self { cents })
    }

    /// Exactly the numbers written with at most two decimals: `32.49` is accepted, and
    /// `32.489999999999995`, a different number that rounds to the same cents, is not.
    pub fn parse(amount: f64) -> Result<Self, String> {
        let cents = (amount * 100.0).round();
        if !amount.is_finite() || amount < 0.0 || cents / 100.0 != amount {
            return Err("price must be a non-negative amount with at most two decimals".into());
        }
        if cents > Self::MAX_CENTS as f64 {
            return Err(format!("price must be at most {}", Self::MAX_CENTS / 100));
        }
        Ok(Self {
            cents: cents as u64,
        })
    }

    pub fn cents(self) -> u64 {
        self.cents
    }
}

impl TryFrom<f64> for Price {
    type Error = String;
    fn try_from(amount: f64) -> Result<Self, String> {
        Self::parse(amount)
    }
}

impl From<Price> for f64 {
    fn from(price: Price) -> f64 {
        price.cents as f64 / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(CategoryName::parse("  Floor ").unwrap().as_str(), "Floor");
        assert!(CategoryName::parse("   ").is_err());
        assert!(CategoryName::parse(&"x".repeat(65)).is_err());
        assert!(EventName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn prices_keep_two_decimals_exactly() {
        assert_eq!(Price::parse(49.99).unwrap().cents(), 4999);
        assert_eq!(Price::parse(0.0).unwrap().cents(), 0);
        assert!(Price::parse(-1.0).is_err());
        assert!(Price::parse(1.234).is_err());
        assert!(Price::parse(32.489999999999995).is_err());
        assert_eq!(Price::parse(32.49).unwrap().cents(), 3249);
        assert_eq!(Price::parse(99_999_999.99).unwrap().cents(), 9_999_999_999);
        assert_eq!(Price::parse(0.07).unwrap().cents(), 7);
        assert!(Price::parse(1e300).is_err());
        assert_eq!(f64::from(Price::from_cents(12345).unwrap()), 123.45);
    }

    proptest::proptest! {
        #[test]
        fn every_price_in_cents_reads_back_as_itself(cents in 0..=Price::MAX_CENTS) {
            let shown = f64::from(Price::from_cents(cents).unwrap());
            proptest::prop_assert_eq!(Price::parse(shown).map(Price::cents), Ok(cents));
            // Its decimal text, as a client would send it, parses to the same number.
            let text: f64 = format!("{}.{:02}", cents / 100, cents % 100).parse().unwrap();
            proptest::prop_assert_eq!(text, shown);
        }
    }

    #[test]
    fn stock_is_bounded() {
        assert!(TotalStock::new(-1).is_err());
        assert!(TotalStock::new(i64::from(TotalStock::MAX) + 1).is_err());
        assert_eq!(TotalStock::new(500).unwrap().get(), 500);
    }
}
