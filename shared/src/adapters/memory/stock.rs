use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::sharded::ShardedMap;
use super::{MemoryEventSink, lock};
use crate::contracts::{
    HoldRequest, RateLimit, ReservationChange, ReserveError, SettleError, Settlement, StockStore,
};
use crate::domain::{
    Category, CategoryName, EventId, Reservation, ReservationEvent, ReservationId,
    ReservationStatus, StockCounts, UserId,
};
use crate::error::StoreError;

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
}

struct CategoryStock {
    counts: StockCounts,
    max_per_user: Option<u32>,
    /// Tickets each user holds or bought here; kept only when `max_per_user` is set.
    per_user: ShardedMap<UserId, u32>,
    /// Each user's reservation rate in this category: tokens left, and when last counted.
    rate: ShardedMap<UserId, (f64, DateTime<Utc>)>,
    /// user -> Idempotency-Key -> the reservation that key created in this category. Keys are
    /// scoped to a category as on Redis, where a category's keys share one cluster slot.
    idempotency: ShardedMap<UserId, HashMap<String, ReservationId>>,
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
        if self.max_per_user.is_some() {
            *self.per_user.get_or_default(user.clone()) += qty;
        }
    }

    fn sell(&mut self, qty: u32) {
        self.counts.held -= qty;
        self.counts.sold += qty;
    }

    /// A hold that ends unsold gives its tickets back, to the stock and to the user's limit.
    fn release(&mut self, user: &UserId, qty: u32) {
        self.counts.held -= qty;
        self.counts.available += qty;
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
        let state = lock(&self.state);
        Ok(state
            .categories
            .iter()
            .flat_map(|(event, categories)| {
                categories
                    .iter()
                    .map(|(name, stock)| (*event, name.clone(), stock.counts))
            })
            .collect())
    }

    async fn reserve(&self, mut hold: HoldRequest) -> Result<ReservationChange, ReserveError> {
        let mut state = lock(&self.state);
        let State {
            categories,
            reservations,
            deadlines,
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
                .and_then(|keys| keys.get(key.as_str()));
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
        let reservation = hold.into_reservation();
        deadlines.insert((reservation.expires_at, reservation.id));
        if let Some(key) = idempotency_key {
            stock
                .idempotency
                .get_or_default(reservation.user_id.clone())
                .insert(key.as_str().to_owned(), reservation.id);
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
        Ok(due.len())
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        Ok(lock(&self.state).reservations.get(&id).cloned())
    }
}
