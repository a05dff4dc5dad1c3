//! Where things live in Redis. Every key of one category shares a hash tag, so each Lua script
//! touches one cluster slot; the few global keys are written next to a script, never inside one.

use domain::{CategoryName, EventId, ReservationId, UserId};

/// The keys of one category, all in one cluster slot (`{c:<event>:<category>}`).
pub struct CategoryKeys {
    /// Hash: total, available, held, sold, max_per_user (0: none).
    pub stock: String,
    /// Hash: reservation id -> the reservation as JSON, in every state.
    pub holds: String,
    /// Sorted set: live hold -> deadline in ms, for the sweeper.
    pub deadlines: String,
    /// Hash: user -> tickets held and bought (only in categories with a per-user limit).
    pub users: String,
    /// Stream: the events of this category's state changes, until Kafka has them.
    pub outbox: String,
    tag: String,
}

impl CategoryKeys {
    pub fn new(event: EventId, category: &str) -> Self {
        let tag = format!("{{c:{event}:{category}}}");
        Self {
            stock: format!("{tag}:stock"),
            holds: format!("{tag}:holds"),
            deadlines: format!("{tag}:deadlines"),
            users: format!("{tag}:users"),
            outbox: format!("{tag}:outbox"),
            tag,
        }
    }

    /// Remembers the reservation an Idempotency-Key made, in this category.
    pub fn idempotency(&self, user: &UserId, key: &str) -> String {
        format!("{}:idem:{}:{key}", self.tag, user.as_str())
    }

    /// A user's reservation rate bucket in this category.
    pub fn rate(&self, user: &UserId) -> String {
        format!("{}:rate:{}", self.tag, user.as_str())
    }

    /// The five keys every transition script takes, in its KEYS order.
    pub fn transition(&self) -> [&str; 5] {
        [
            &self.stock,
            &self.holds,
            &self.deadlines,
            &self.users,
            &self.outbox,
        ]
    }
}

/// Set of every category, as `<event id>:<name>`: what the sweeper and the relay visit.
pub const CATEGORIES: &str = "categories";

/// Set of the names of one event's categories.
pub fn event_categories(event: EventId) -> String {
    format!("ev:{event}:categories")
}

/// String: the `<event id>:<name>` of a reservation's category, so a confirm finds its slot.
pub fn reservation_category(id: ReservationId) -> String {
    format!("rsv:{id}")
}

/// `<event id>:<name>`, the member of [`CATEGORIES`] and the value of [`reservation_category`].
pub fn category_member(event: EventId, category: &CategoryName) -> String {
    format!("{event}:{category}")
}

/// Splits a [`category_member`] back into its event and name.
pub fn parse_category_member(member: &str) -> Option<(EventId, &str)> {
    let (event, name) = member.split_at_checked(36)?;
    Some((EventId::parse(event).ok()?, name.strip_prefix(':')?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_keys_share_one_hash_tag() {
        let event = EventId::generate();
        let keys = CategoryKeys::new(event, "Floor");
        let tag = format!("{{c:{event}:Floor}}");
        for key in keys.transition() {
            assert!(key.starts_with(&tag), "{key}");
        }
        let user = UserId::parse("ann").unwrap();
        assert!(keys.idempotency(&user, "k").starts_with(&tag));
        assert!(keys.rate(&user).starts_with(&tag));
    }

    #[test]
    fn members_round_trip_even_with_colons_in_the_name() {
        let event = EventId::generate();
        let name = CategoryName::parse("VIP: front row").unwrap();
        let member = category_member(event, &name);
        assert_eq!(
            parse_category_member(&member),
            Some((event, "VIP: front row"))
        );
        assert_eq!(parse_category_member("nonsense"), None);
    }
}
