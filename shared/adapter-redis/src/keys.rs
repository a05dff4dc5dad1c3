//! Where things live in Redis.
//!
//! Categories are spread over [`SHARDS`] shards. Every key of a category, and the indexes of
//! its shard, carry the shard's hash tag (`{s<n>.<k>}`), so each script and each pipeline touches
//! one cluster slot, and what the relay, the sweeper and the gauges visit is [`SHARDS`] keys
//! whatever the number of categories. A reservation id carries its shard in its last byte
//! ([`ReservationId::generate_routed`]), so a confirm finds the hold from its id alone.
//!
//! Variable parts (names, users, keys) are length-prefixed wherever another part follows
//! them, so two different tuples never make the same key.

use std::sync::LazyLock;

use domain::{CategoryName, EventId, ReservationId, UserId};

/// Shards of the key space. Fixed: a hold's id and every key depend on it.
pub const SHARDS: u8 = 16;

/// Each shard's hash tag, chosen so that shard `n`'s cluster slot lies in the `n`th sixteenth
/// of the 16,384 slots: a cluster whose masters split the slots evenly (as
/// `redis-cli --cluster create` does) gets an even share of the shards.
const TAGS: [&str; SHARDS as usize] = [
    "{s0.10}", "{s1.13}", "{s2.23}", "{s3.20}", "{s4.0}", "{s5.3}", "{s6.40}", "{s7.43}",
    "{s8.23}", "{s9.20}", "{s10.22}", "{s11.21}", "{s12.2}", "{s13.1}", "{s14.41}", "{s15.42}",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard(u8);

impl Shard {
    pub fn all() -> impl Iterator<Item = Shard> {
        (0..SHARDS).map(Shard)
    }

    /// A category's shard: FNV-1a of its event id and name, so it never changes.
    pub fn of_category(event: EventId, name: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in event.0.as_bytes().iter().chain(name.as_bytes()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Self((hash % u64::from(SHARDS)) as u8)
    }

    /// The shard a reservation id names; `None` for an id no Redis store made.
    pub fn of_reservation(id: ReservationId) -> Option<Self> {
        let route = id.route();
        (route < SHARDS).then_some(Self(route))
    }

    /// The byte a reservation id of this shard ends with.
    pub fn route(self) -> u8 {
        self.0
    }

    /// Made once: the hot path builds no shard key.
    pub fn keys(self) -> &'static ShardKeys {
        static KEYS: LazyLock<Vec<ShardKeys>> =
            LazyLock::new(|| Shard::all().map(ShardKeys::new).collect());
        &KEYS[usize::from(self.0)]
    }
}

/// The indexes of one shard.
pub struct ShardKeys {
    /// Hash: reservation id -> the reservation as JSON, while it is live and for a while after.
    pub holds: String,
    /// Sorted set: category member -> its earliest live deadline (ms), for the sweeper.
    pub due: String,
    /// Stream: the events of this shard's changes, until Kafka has them.
    pub outbox: String,
    /// Sorted set: reservation id -> when it ended (ms), until it is forgotten.
    pub finished: String,
    /// Sorted set: category member -> its last change (ms): every category of the shard,
    /// for the gauges.
    pub touched: String,
    /// Hash: reservation id -> the Redis key of the Idempotency-Key that made it.
    pub key_of: String,
    /// Counter: written just before a `WAIT`, so the wait covers every earlier write of the
    /// shard, whichever connection made it (WAIT counts the caller's own writes).
    pub fence: String,
    tag: &'static str,
}

impl ShardKeys {
    fn new(shard: Shard) -> Self {
        let tag = TAGS[usize::from(shard.0)];
        Self {
            holds: format!("{tag}:holds"),
            due: format!("{tag}:due"),
            outbox: format!("{tag}:outbox"),
            finished: format!("{tag}:finished"),
            touched: format!("{tag}:touched"),
            key_of: format!("{tag}:key-of"),
            fence: format!("{tag}:fence"),
            tag,
        }
    }
}

/// The keys of one category, and of its shard.
pub struct CategoryKeys {
    pub shard: Shard,
    pub shard_keys: &'static ShardKeys,
    /// Hash: total, available, held, sold, max_per_user (0: none).
    pub stock: String,
    /// Sorted set: live hold -> deadline in ms.
    pub deadlines: String,
    /// Hash: user -> tickets held and bought (only in categories with a per-user limit).
    pub users: String,
    /// `<event id>:<name>`: the category in the shard's sorted sets.
    pub member: String,
    prefix: String,
}

impl CategoryKeys {
    pub fn new(event: EventId, name: &str) -> Self {
        let shard = Shard::of_category(event, name);
        let shard_keys = shard.keys();
        let prefix = format!("{}:c:{event}:{}:{name}", shard_keys.tag, name.len());
        Self {
            shard,
            stock: format!("{prefix}:stock"),
            deadlines: format!("{prefix}:deadlines"),
            users: format!("{prefix}:users"),
            member: category_member(event, name),
            prefix,
            shard_keys,
        }
    }

    /// Remembers the reservation an Idempotency-Key made, in this category.
    pub fn idempotency(&self, user: &UserId, key: &str) -> String {
        let user = user.as_str();
        format!("{}:idem:{}:{user}:{key}", self.prefix, user.len())
    }

    /// A user's reservation rate bucket in this category.
    pub fn rate(&self, user: &UserId) -> String {
        format!("{}:rate:{}", self.prefix, user.as_str())
    }

    /// The nine keys every transition script takes, in its KEYS order (see `common.lua`).
    pub fn transition(&self) -> [&str; 9] {
        let shard = self.shard_keys;
        [
            &self.stock,
            &self.deadlines,
            &self.users,
            &shard.holds,
            &shard.due,
            &shard.outbox,
            &shard.touched,
            &shard.finished,
            &shard.key_of,
        ]
    }

    /// The keys of `reserve.lua`: the first seven of [`Self::transition`], then only what the
    /// request needs (each key costs Redis work on every call): a rate bucket, and for an
    /// Idempotency-Key the shard's key-of and the key itself, the bucket's place then taken
    /// by any key of the slot if there is no rate.
    pub fn reserve<'a>(
        &'a self,
        rate: Option<&'a str>,
        idempotency: Option<&'a str>,
    ) -> Vec<&'a str> {
        let mut keys = self.transition()[..7].to_vec();
        if rate.is_some() || idempotency.is_some() {
            keys.push(rate.unwrap_or(&self.stock));
        }
        if let Some(idempotency) = idempotency {
            keys.extend([self.shard_keys.key_of.as_str(), idempotency]);
        }
        keys
    }
}

/// `<event id>:<name>`; the event id has a fixed length, so the name needs no prefix.
pub fn category_member(event: EventId, name: &str) -> String {
    format!("{event}:{name}")
}

/// Splits a [`category_member`] back into its event and name.
pub fn parse_category_member(member: &str) -> Option<(EventId, CategoryName)> {
    let (event, name) = member.split_at_checked(36)?;
    let name = CategoryName::parse(name.strip_prefix(':')?).ok()?;
    Some((EventId::parse(event).ok()?, name))
}

/// The keys of an event's waiting room: all in the event's own slot (its hash tag is the
/// event id), so each step of the room is one script on one node.
pub struct RoomKeys {
    /// Hash: rate, ttl, opens_at (ms), version, admitted_total, sold_out, credit, last.
    pub room: String,
    /// Sorted set: waiting fan -> when they joined (ms), or their draw below `opens_at`.
    pub queue: String,
    /// Sorted set: admitted fan -> admitted until (ms).
    pub admitted: String,
}

/// Set of the event ids whose waiting room is on, for the admit timer.
pub const ROOMS: &str = "wr:rooms";

impl RoomKeys {
    pub fn new(event: EventId) -> Self {
        let prefix = format!("wr:{{{event}}}");
        Self {
            room: format!("{prefix}:room"),
            queue: format!("{prefix}:queue"),
            admitted: format!("{prefix}:admitted"),
        }
    }

    pub fn all(&self) -> [&str; 3] {
        [&self.room, &self.queue, &self.admitted]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        &key[open..=close]
    }

    #[test]
    fn a_category_and_its_shard_share_one_hash_tag() {
        let event = EventId::generate();
        let keys = CategoryKeys::new(event, "Floor");
        let tag = slot_tag(&keys.stock).to_owned();
        for key in keys.transition() {
            assert_eq!(slot_tag(key), tag, "{key}");
        }
        let user = UserId::parse("ann").unwrap();
        assert_eq!(slot_tag(&keys.idempotency(&user, "k")), tag);
        assert_eq!(slot_tag(&keys.rate(&user)), tag);
    }

    /// Redis Cluster's slot of a key with a hash tag: CRC16 (XMODEM) of the tag, mod 16384.
    fn cluster_slot(key: &str) -> u16 {
        let tag = slot_tag(key).trim_matches(|c| c == '{' || c == '}');
        let mut crc: u16 = 0;
        for byte in tag.bytes() {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
        }
        crc % 16384
    }

    #[test]
    fn shard_n_lives_in_the_nth_sixteenth_of_the_slots() {
        // The well-known example of the Redis Cluster specification.
        assert_eq!(cluster_slot("{123456789}"), 0x31C3);
        for shard in Shard::all() {
            let slot = cluster_slot(&shard.keys().holds);
            assert_eq!(slot / 1024, u16::from(shard.0), "{shard:?}");
        }
    }

    #[test]
    fn a_routed_id_finds_its_shard() {
        for shard in Shard::all() {
            let id = ReservationId::generate_routed(shard.route());
            assert_eq!(Shard::of_reservation(id), Some(shard));
        }
        let foreign = ReservationId::generate_routed(SHARDS);
        assert_eq!(Shard::of_reservation(foreign), None);
    }

    #[test]
    fn categories_spread_over_every_shard() {
        let event = EventId::generate();
        let used: std::collections::BTreeSet<Shard> = (0..400)
            .map(|n| Shard::of_category(event, &format!("Block {n}")))
            .collect();
        assert_eq!(used.len(), usize::from(SHARDS));
    }

    #[test]
    fn colons_in_users_and_keys_never_make_one_key_of_two() {
        let keys = CategoryKeys::new(EventId::generate(), "Floor");
        let (a, ab) = (UserId::parse("a").unwrap(), UserId::parse("a:b").unwrap());
        assert_ne!(keys.idempotency(&a, "b:c"), keys.idempotency(&ab, "c"));
        let other = CategoryKeys::new(EventId::generate(), "x:stock");
        assert_ne!(
            other.stock,
            CategoryKeys::new(other_event(&other), "x").stock
        );
    }

    fn other_event(keys: &CategoryKeys) -> EventId {
        parse_category_member(&keys.member).unwrap().0
    }

    #[test]
    fn members_round_trip_even_with_colons_in_the_name() {
        let event = EventId::generate();
        let member = category_member(event, "VIP: front row");
        let (parsed, name) = parse_category_member(&member).unwrap();
        assert_eq!((parsed, name.as_str()), (event, "VIP: front row"));
        assert_eq!(parse_category_member("nonsense"), None);
    }
}
