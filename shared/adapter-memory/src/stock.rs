use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::sharded::ShardedMap;
use super::{MemoryEventSink, lock};
use domain::contracts::{
    CategorySale, HoldRequest, RateLimit, ReservationChange, ReserveError, SaleChanges,
    SettleError, Settlement, StockStore,
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
    /// Holds that ended, by when, until they are forgotten.
    finished: BTreeSet<(DateTime<Utc>, ReservationId)>,
    /// The Idempotency-Key that made a hold, forgotten with it.
    key_of: ShardedMap<ReservationId, String>,
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
    /// user -> Idempotency-Key -> the reservation that key created in this category, for as
    /// long as the hold is kept. Keys are scoped to a category as on Redis, where a
    /// category's keys share one cluster slot.
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
        self.finished.insert((now, id));
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
                live_holds: 0,
                max_per_user: category.max_per_user.map(|limit| limit.get()),
                per_user: ShardedMap::default(),
                rate: ShardedMap::default(),
                idempotency: ShardedMap::default(),
            });
        Ok(())
    }

    async fn counts(
        &self,
        event: EventId,
        names: &[CategoryName],
    ) -> Result<Vec<(CategoryName, StockCounts)>, StoreError> {
        let state = lock(&self.state);
        let Some(categories) = state.categories.get(&event) else {
            return Ok(Vec::new());
        };
        Ok(names
            .iter()
            .filter_map(|name| Some((name.clone(), categories.get(name)?.counts)))
            .collect())
    }

    /// Every category, every time: in memory that costs nothing worth tracking changes for.
    async fn sale_changes(&self, _since: u64) -> Result<SaleChanges, StoreError> {
        let state = lock(&self.state);
        let categories = state
            .categories
            .iter()
            .flat_map(|(event, categories)| {
                categories.iter().map(|(name, stock)| CategorySale {
                    event_id: *event,
                    name: name.clone(),
                    counts: Some(stock.counts),
                    live_holds: stock.live_holds,
                })
            })
            .collect();
        Ok(SaleChanges {
            categories,
            next: 0,
        })
    }

    async fn reserve(&self, mut hold: HoldRequest) -> Result<ReservationChange, ReserveError> {
        let mut state = lock(&self.state);
        let State {
            categories,
            reservations,
            deadlines,
            key_of,
            ..
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
            key_of.insert(reservation.id, key.as_str().to_owned());
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

    async fn finished_holds(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        limit: usize,
    ) -> Result<Vec<(ReservationId, ReservationStatus)>, StoreError> {
        let state = lock(&self.state);
        let cutoff = now - retention;
        Ok(state
            .finished
            .iter()
            .take_while(|(ended, _)| *ended <= cutoff)
            .take(limit)
            .filter_map(|(_, id)| Some((*id, state.reservations.get(id)?.status)))
            .collect())
    }

    async fn forget_holds(&self, ids: &[ReservationId]) -> Result<usize, StoreError> {
        let mut state = lock(&self.state);
        let mut forgotten = 0;
        for id in ids {
            let Some(reservation) = state.reservations.get(id) else {
                continue;
            };
            if !reservation.status.is_final() {
                continue;
            }
            let (ended, user) = (reservation.updated_at, reservation.user_id.clone());
            let (event, category) = (reservation.event_id, reservation.category.clone());
            state.reservations.remove(id);
            state.finished.remove(&(ended, *id));
            if let Some(key) = state.key_of.remove(id)
                && let Some(stock) = state
                    .categories
                    .get_mut(&event)
                    .and_then(|categories| categories.get_mut(&category))
                && let Some(keys) = stock.idempotency.get_mut(&user)
            {
                keys.remove(&key);
                if keys.is_empty() {
                    stock.idempotency.remove(&user);
                }
            }
            forgotten += 1;
        }
        Ok(forgotten)
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        Ok(lock(&self.state).reservations.get(&id).cloned())
    }
}
