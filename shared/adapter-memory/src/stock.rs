use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::sharded::ShardedMap;
use super::{MemoryEventSink, lock};
use domain::contracts::{
    HoldRequest, IDEMPOTENCY_KEY_TTL_SECS, RateLimit, ReservationChange, ReserveError, SettleError,
    Settlement, StockStore,
};
use domain::error::StoreError;
use domain::{
    Category, CategoryName, EventId, Reservation, ReservationEvent, ReservationId,
    ReservationStatus, StockCounts, UserId,
};

/// Stock and holds behind one mutex: each operation is a short critical section that never
/// awaits, which makes every transition atomic and costs well under a microsecond.
pub struct MemoryStockStore {
    state: Mutex<State>,
    events: MemoryEventSink,
}

#[derive(Default)]
struct State {
    categories: HashMap<EventId, HashMap<CategoryName, CategoryStock>>,
    reservations: ShardedMap<ReservationId, Reservation>,
    /// Deadlines of live holds, earliest first, for the sweeper.
    deadlines: BTreeSet<(DateTime<Utc>, ReservationId)>,
    /// Idempotency-Keys in the order they were first used, for the sweeper to forget.
    keys_to_forget: VecDeque<KeyToForget>,
}

/// An Idempotency-Key and when it is forgotten.
struct KeyToForget {
    forget_at: DateTime<Utc>,
    event_id: EventId,
    category: CategoryName,
    user: UserId,
    key: String,
}

struct CategoryStock {
    counts: StockCounts,
    /// Holds not yet ended: the live ones among `reservations`, counted as they come and go.
    live_holds: u32,
    max_per_user: Option<u32>,
    /// Tickets each user holds or bought here; kept only when `max_per_user` is set.
    per_user: ShardedMap<UserId, u32>,
    /// Each user's reservation rate in this category: tokens left, and when last counted.
    rate: ShardedMap<UserId, (f64, DateTime<Utc>)>,
    /// user -> Idempotency-Key -> the reservation that key created in this category, and
    /// when the key is forgotten. Keys are scoped to a category as on Redis, where a
    /// category's keys share one cluster slot.
    idempotency: ShardedMap<UserId, HashMap<String, (ReservationId, DateTime<Utc>)>>,
}

impl CategoryStock {
    /// Takes one token from the user's bucket, or says how long until there is one.
    fn take_token(
        &mut self,
        user: &UserId,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Result<(), u32> {
        let burst = f64::from(limit.burst);
        let (tokens, counted) = self.rate.get_or_default_with(user.clone(), || (burst, now));
        let elapsed_ms = (now - *counted).num_milliseconds().max(0) as f64;
        let refilled = (*tokens + elapsed_ms * f64::from(limit.per_minute) / 60_000.0).min(burst);
        *counted = now;
        if refilled < 1.0 {
            *tokens = refilled;
            return Err(limit.wait_secs(refilled));
        }
        *tokens = refilled - 1.0;
        Ok(())
    }

    fn hold(&mut self, user: &UserId, qty: u32) {
        self.counts.available -= qty;
        self.counts.held += qty;
        self.live_holds += 1;
        if self.max_per_user.is_some() {
            *self.per_user.get_or_default(user.clone()) += qty;
        }
    }

    fn sell(&mut self, qty: u32) {
        self.counts.held -= qty;
        self.counts.sold += qty;
        self.live_holds -= 1;
    }

    /// A hold that ends unsold gives its tickets back, to the stock and to the user's limit.
    fn release(&mut self, user: &UserId, qty: u32) {
        self.counts.held -= qty;
        self.counts.available += qty;
        self.live_holds -= 1;
        if let Some(count) = self.per_user.get_mut(user) {
            *count -= qty;
            if *count == 0 {
                self.per_user.remove(user);
            }
        }
    }
}

impl State {
    /// Moves a live hold to a final state and returns its stock; the one place holds end.
    fn finish(
        &mut self,
        id: ReservationId,
        status: ReservationStatus,
        now: DateTime<Utc>,
    ) -> Option<&Reservation> {
        let reservation = self.reservations.get_mut(&id)?;
        debug_assert_eq!(reservation.status, ReservationStatus::Held);
        reservation.status = status;
        reservation.updated_at = now;
        self.deadlines.remove(&(reservation.expires_at, id));
        let stock = self
            .categories
            .get_mut(&reservation.event_id)?
            .get_mut(reservation.category.as_str())?;
        match status {
            ReservationStatus::Confirmed => stock.sell(reservation.qty.get()),
            _ => stock.release(&reservation.user_id, reservation.qty.get()),
        }
        Some(reservation)
    }

    /// Forgets up to `limit` Idempotency-Keys whose time is up, unless reused since.
    fn forget_keys(&mut self, now: DateTime<Utc>, limit: usize) {
        for _ in 0..limit {
            if self
                .keys_to_forget
                .front()
                .is_none_or(|key| key.forget_at > now)
            {
                return;
            }
            let Some(due) = self.keys_to_forget.pop_front() else {
                return;
            };
            let Some(stock) = self
                .categories
                .get_mut(&due.event_id)
                .and_then(|event| event.get_mut(due.category.as_str()))
            else {
                continue;
            };
            if let Some(keys) = stock.idempotency.get_mut(&due.user) {
                if keys
                    .get(&due.key)
                    .is_some_and(|(_, forget_at)| *forget_at == due.forget_at)
                {
                    keys.remove(&due.key);
                }
                if keys.is_empty() {
                    stock.idempotency.remove(&due.user);
                }
            }
        }
    }
}

impl MemoryStockStore {
    pub fn new(events: MemoryEventSink) -> Self {
        Self {
            state: Mutex::new(State::default()),
            events,
        }
    }

    fn publish(&self, reservation: &Reservation) {
        self.events.publish(ReservationEvent::of(reservation));
    }

    /// `read` of every category of every event.
    fn each_category<T>(
        &self,
        read: impl Fn(&CategoryStock) -> T,
    ) -> Vec<(EventId, CategoryName, T)> {
        let state = lock(&self.state);
        state
            .categories
            .iter()
            .flat_map(|(event, categories)| {
                categories
                    .iter()
                    .map(|(name, stock)| (*event, name.clone(), read(stock)))
            })
            .collect()
    }

    /// How many Idempotency-Keys are remembered, over every category and user.
    #[cfg(test)]
    fn remembered_keys(&self) -> usize {
        let state = lock(&self.state);
        state
            .categories
            .values()
            .flat_map(HashMap::values)
            .flat_map(|stock| stock.idempotency.values())
            .map(HashMap::len)
            .sum()
    }
}

#[async_trait]
impl StockStore for MemoryStockStore {
    async fn add_category(&self, category: &Category) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state
            .categories
            .entry(category.event_id)
            .or_default()
            .entry(category.name.clone())
            .or_insert_with(|| CategoryStock {
                counts: StockCounts::new(category.total_stock.get()),
                live_holds: 0,
                max_per_user: category.max_per_user.map(|limit| limit.get()),
                per_user: ShardedMap::default(),
                rate: ShardedMap::default(),
                idempotency: ShardedMap::default(),
            });
        Ok(())
    }

    async fn counts(&self, event: EventId) -> Result<Vec<(CategoryName, StockCounts)>, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .categories
            .get(&event)
            .map(|categories| {
                categories
                    .iter()
                    .map(|(name, stock)| (name.clone(), stock.counts))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn all_counts(&self) -> Result<Vec<(EventId, CategoryName, StockCounts)>, StoreError> {
        Ok(self.each_category(|stock| stock.counts))
    }

    async fn live_holds(&self) -> Result<Vec<(EventId, CategoryName, u32)>, StoreError> {
        Ok(self.each_category(|stock| stock.live_holds))
    }

    async fn reserve(&self, mut hold: HoldRequest) -> Result<ReservationChange, ReserveError> {
        let mut state = lock(&self.state);
        let State {
            categories,
            reservations,
            deadlines,
            keys_to_forget,
        } = &mut *state;
        let stock = categories
            .get_mut(&hold.event_id)
            .and_then(|event| event.get_mut(hold.category.as_str()))
            .ok_or(ReserveError::UnknownCategory)?;
        if let Some(limit) = hold.rate_limit {
            stock
                .take_token(&hold.user, limit, hold.now)
                .map_err(|retry_after_secs| ReserveError::RateLimited { retry_after_secs })?;
        }
        if let Some(key) = &hold.idempotency_key {
            let earlier = stock
                .idempotency
                .get(&hold.user)
                .and_then(|keys| keys.get(key.as_str()))
                .filter(|(_, forget_at)| hold.now < *forget_at)
                .map(|(id, _)| id);
            if let Some(reservation) = earlier.and_then(|id| reservations.get(id)) {
                if reservation.qty != hold.qty {
                    return Err(ReserveError::IdempotencyKeyReused);
                }
                return Ok(ReservationChange {
                    reservation: reservation.clone(),
                    changed: false,
                });
            }
        }

        let qty = hold.qty.get();
        if let Some(max) = stock.max_per_user {
            let owned = stock.per_user.get(&hold.user).copied().unwrap_or(0);
            if owned + qty > max {
                return Err(ReserveError::LimitExceeded { max });
            }
        }
        if stock.counts.available < qty {
            return Err(ReserveError::SoldOut);
        }
        stock.hold(&hold.user, qty);

        let idempotency_key = hold.idempotency_key.take();
        let hold_now = hold.now;
        let reservation = hold.into_reservation();
        deadlines.insert((reservation.expires_at, reservation.id));
        if let Some(key) = idempotency_key {
            let forget_at = hold_now + Duration::seconds(IDEMPOTENCY_KEY_TTL_SECS.into());
            stock
                .idempotency
                .get_or_default(reservation.user_id.clone())
                .insert(key.as_str().to_owned(), (reservation.id, forget_at));
            keys_to_forget.push_back(KeyToForget {
                forget_at,
                event_id: reservation.event_id,
                category: reservation.category.clone(),
                user: reservation.user_id.clone(),
                key: key.as_str().to_owned(),
            });
        }
        reservations.insert(reservation.id, reservation.clone());
        self.publish(&reservation);
        Ok(ReservationChange {
            reservation,
            changed: true,
        })
    }

    async fn settle(
        &self,
        id: ReservationId,
        user: &UserId,
        settlement: Settlement,
        now: DateTime<Utc>,
    ) -> Result<ReservationChange, SettleError> {
        let mut state = lock(&self.state);
        let reservation = state
            .reservations
            .get(&id)
            .filter(|reservation| reservation.user_id == *user)
            .ok_or(SettleError::NotFound)?;
        let wanted = settlement.status();
        match reservation.status {
            // Past its deadline a hold can only expire; the sweeper records that.
            ReservationStatus::Held if now >= reservation.expires_at => Err(SettleError::Expired),
            ReservationStatus::Held => {
                let settled = state
                    .finish(id, wanted, now)
                    .cloned()
                    .ok_or_else(|| StoreError("hold without stock".into()))?;
                self.publish(&settled);
                Ok(ReservationChange {
                    reservation: settled,
                    changed: true,
                })
            }
            ReservationStatus::Expired => Err(SettleError::Expired),
            status if status == wanted => Ok(ReservationChange {
                reservation: reservation.clone(),
                changed: false,
            }),
            status => Err(SettleError::AlreadyFinal(status)),
        }
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let mut state = lock(&self.state);
        let due: Vec<ReservationId> = state
            .deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(limit)
            .map(|(_, id)| *id)
            .collect();
        for &id in &due {
            if let Some(expired) = state.finish(id, ReservationStatus::Expired, now) {
                self.events.publish(ReservationEvent::of(expired));
            }
        }
        state.forget_keys(now, limit);
        Ok(due.len())
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        Ok(lock(&self.state).reservations.get(&id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::channel;
    use domain::{IdempotencyKey, Price, Qty, TotalStock};

    fn hold(category: &Category, key: &str, qty: i64, now: DateTime<Utc>) -> HoldRequest {
        HoldRequest {
            event_id: category.event_id,
            category: category.name.clone(),
            user: UserId::parse("ann").unwrap(),
            qty: Qty::new(qty).unwrap(),
            idempotency_key: Some(IdempotencyKey::parse(key).unwrap()),
            rate_limit: None,
            now,
            expires_at: now + Duration::minutes(10),
        }
    }

    #[tokio::test]
    async fn a_flood_of_idempotency_keys_is_forgotten_after_their_ttl() {
        let store = MemoryStockStore::new(channel().0);
        let category = Category {
            event_id: EventId::generate(),
            name: CategoryName::parse("Floor").unwrap(),
            total_stock: TotalStock::new(1_000_000).unwrap(),
            price: Price::from_cents(1000).unwrap(),
            max_per_user: None,
        };
        store.add_category(&category).await.unwrap();
        let start = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        for n in 0..5_000 {
            store
                .reserve(hold(&category, &format!("key-{n}"), 1, start))
                .await
                .unwrap();
        }
        assert_eq!(store.remembered_keys(), 5_000);

        // The holds expire after ten minutes; their keys are kept for a day.
        let ttl = Duration::seconds(IDEMPOTENCY_KEY_TTL_SECS.into());
        store
            .expire_due(start + ttl - Duration::seconds(1), 10_000)
            .await
            .unwrap();
        assert_eq!(store.remembered_keys(), 5_000);
        let replay = store
            .reserve(hold(
                &category,
                "key-7",
                2,
                start + ttl - Duration::seconds(1),
            ))
            .await;
        assert!(matches!(replay, Err(ReserveError::IdempotencyKeyReused)));

        // Past the TTL a key means nothing, even before the sweeper has forgotten it ...
        let later = start + ttl;
        let reused = store
            .reserve(hold(&category, "key-7", 2, later))
            .await
            .unwrap();
        assert!(reused.changed);
        // ... and the sweeper forgets the rest, in batches, but not the key just reused.
        store.expire_due(later, 1_000).await.unwrap();
        assert_eq!(store.remembered_keys(), 4_001);
        for _ in 0..5 {
            store.expire_due(later, 1_000).await.unwrap();
        }
        assert_eq!(store.remembered_keys(), 1);
        let replay = store
            .reserve(hold(&category, "key-7", 2, later))
            .await
            .unwrap();
        assert_eq!(
            (replay.changed, replay.reservation.id),
            (false, reused.reservation.id)
        );
    }
}
