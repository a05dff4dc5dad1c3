//! The contracts functions call. Each has an in-memory adapter (the embedded default and the
//! tests) and a production one (Redis, Kafka, PostgreSQL), chosen by the runtime's settings.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::error::{ApiError, ErrorKind, StoreError};
use crate::waiting_room::AdmissionRefused;
use crate::{
    Category, CategoryName, Event, EventId, IdempotencyKey, Qty, Reservation, ReservationEvent,
    ReservationId, ReservationStatus, StockCounts, UserId,
};

/// What exists: events and their ticket categories.
#[async_trait]
pub trait Catalogue: Send + Sync {
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError>;
    async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError>;
    async fn insert_category(&self, category: &Category) -> Result<(), InsertCategoryError>;
    /// The event's categories in the order they were added.
    async fn categories(&self, event: EventId) -> Result<Vec<Category>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InsertCategoryError {
    #[error("no such event")]
    UnknownEvent,
    #[error("the event already has a category of that name")]
    DuplicateName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Live stock and holds. Every method is one atomic step, so the stock invariant holds at every
/// instant and every accepted change is published on the reservation stream with it.
///
/// Times: the memory store uses the `now` its callers pass (the process's clock). A store
/// shared by several processes (Redis) uses its own clock instead, so that every process
/// agrees on deadlines, expiry and rates.
#[async_trait]
pub trait StockStore: Send + Sync {
    /// Starts a new category with all of its stock available; a category that exists is left
    /// alone, so a retry is harmless.
    async fn add_category(&self, category: &Category) -> Result<(), StoreError>;
    /// The counters of those of `names` (categories of `event`) that have stock.
    async fn counts(
        &self,
        event: EventId,
        names: &[CategoryName],
    ) -> Result<Vec<(CategoryName, StockCounts)>, StoreError>;
    /// The sale state of every category that changed since the mark `since` (0: of every
    /// category), for the gauges, and the mark to pass next time.
    async fn sale_changes(&self, since: u64) -> Result<SaleChanges, StoreError>;
    async fn reserve(&self, hold: HoldRequest) -> Result<ReservationChange, ReserveError>;
    /// Confirms or cancels the caller's hold.
    async fn settle(
        &self,
        id: ReservationId,
        user: &UserId,
        settlement: Settlement,
        now: DateTime<Utc>,
    ) -> Result<ReservationChange, SettleError>;
    /// Expires up to `limit` holds whose deadline is at or before `now`; returns how many.
    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError>;
    /// Up to `limit` holds that ended (confirmed, cancelled, expired) at least `retention`
    /// before `now`, with the state they ended in.
    async fn finished_holds(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        limit: usize,
    ) -> Result<Vec<(ReservationId, ReservationStatus)>, StoreError>;
    /// Forgets these finished holds, and the Idempotency-Keys that made them; live holds
    /// are left alone. Returns how many were forgotten.
    async fn forget_holds(&self, ids: &[ReservationId]) -> Result<usize, StoreError>;
    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError>;
}

/// Categories whose sale changed, and the mark to ask from next time.
#[derive(Debug, Clone, Default)]
pub struct SaleChanges {
    pub categories: Vec<CategorySale>,
    pub next: u64,
}

/// One category's sale, as the gauges show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategorySale {
    pub event_id: EventId,
    pub name: CategoryName,
    /// `None` when the counters are missing or cannot be read: the stock invariant is broken.
    pub counts: Option<StockCounts>,
    /// Holds neither confirmed, cancelled nor expired yet.
    pub live_holds: u32,
}

impl CategorySale {
    /// Whether `available + held + sold == total` holds, readable counters included.
    pub fn is_consistent(&self) -> bool {
        self.counts.is_some_and(|counts| counts.is_consistent())
    }
}

/// The longest an Idempotency-Key is remembered: a backstop. A key normally goes with its
/// hold, when the stock store forgets the finished hold (see `forget_holds`).
pub const IDEMPOTENCY_KEY_TTL_SECS: u32 = 24 * 60 * 60;

/// A request to hold `qty` tickets of a category until `expires_at`.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub event_id: EventId,
    pub category: CategoryName,
    pub user: UserId,
    pub qty: Qty,
    /// Identifies one request of this user in this category: a repeat returns its reservation.
    pub idempotency_key: Option<IdempotencyKey>,
    /// How often this user may reserve in this category; `None`: no limit.
    pub rate_limit: Option<RateLimit>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A token bucket: `burst` reservations at once, refilled at `per_minute`. Scoped to a user in
/// a category, so that on Redis it lives in the category's slot and costs no extra round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl RateLimit {
    /// Whole seconds until a bucket holding `tokens` (< 1) has one again.
    pub fn wait_secs(self, tokens: f64) -> u32 {
        let per_second = f64::from(self.per_minute) / 60.0;
        ((1.0 - tokens) / per_second).ceil().max(1.0) as u32
    }
}

impl HoldRequest {
    /// The new hold this request makes, under a fresh id.
    pub fn into_reservation(self) -> Reservation {
        Reservation {
            id: ReservationId::generate(),
            event_id: self.event_id,
            category: self.category,
            user_id: self.user,
            qty: self.qty,
            status: ReservationStatus::Held,
            created_at: self.now,
            expires_at: self.expires_at,
            updated_at: self.now,
        }
    }
}

/// The reservation after a request. `changed` is false when the request repeated one that had
/// already taken effect (an idempotent retry): the same answer, and nothing happened twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationChange {
    pub reservation: Reservation,
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    #[error("no such ticket category")]
    UnknownCategory,
    #[error("not enough tickets left")]
    SoldOut,
    #[error("at most {max} tickets per user in this category")]
    LimitExceeded { max: u32 },
    /// The key made a reservation of another quantity in this category.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("too many reservations, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    /// The event has a waiting room, and this fan has no valid admission from it.
    #[error(transparent)]
    NotAdmitted(#[from] AdmissionRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the payment did to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Paid: the hold becomes a sale.
    Confirm,
    /// Not paid: the hold ends and its tickets return to stock.
    Cancel,
}

impl Settlement {
    pub fn status(self) -> ReservationStatus {
        match self {
            Self::Confirm => ReservationStatus::Confirmed,
            Self::Cancel => ReservationStatus::Cancelled,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// Unknown, or someone else's: the two look the same so ids can't be probed.
    #[error("no such reservation")]
    NotFound,
    #[error("the hold has expired")]
    Expired,
    #[error("the reservation is already {}", .0.as_str())]
    AlreadyFinal(ReservationStatus),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the persist function writes every state change, idempotently.
#[async_trait]
pub trait ReservationStore: Send + Sync {
    /// Upserts each reservation; a reservation never moves back from a final state to `held`,
    /// so applying the same events again (redelivery) changes nothing.
    async fn apply(&self, events: &[ReservationEvent]) -> Result<(), StoreError>;
    async fn get(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError>;
    /// The stored state of each of `ids` that is stored.
    async fn statuses(
        &self,
        ids: &[ReservationId],
    ) -> Result<Vec<(ReservationId, ReservationStatus)>, StoreError>;
}

/// The consuming end of the reservation stream (an in-process channel, or Kafka).
#[async_trait]
pub trait EventSource: Send {
    /// Waits for at least one event and returns up to `max`; `None` once closed and drained.
    async fn next_batch(&mut self, max: usize)
    -> Result<Option<Vec<ReservationEvent>>, StoreError>;
    /// Records that everything returned so far is stored and must not be delivered again.
    async fn commit(&mut self) -> Result<(), StoreError>;
    /// Stops taking new events; those already received still come out of `next_batch`.
    fn close(&mut self);
    /// Publishes how far this consumer is behind the stream, where the source can tell.
    async fn report_lag(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether everything on the stream so far has been returned and committed, where the
    /// source can tell (`true` where it cannot): a stopping consumer reads on until it is.
    async fn caught_up(&mut self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

// The contract errors, mapped once for every function that returns them.

impl From<InsertCategoryError> for ApiError {
    fn from(err: InsertCategoryError) -> Self {
        match err {
            InsertCategoryError::UnknownEvent => {
                ApiError::not_found("event_not_found", "no such event")
            }
            InsertCategoryError::DuplicateName => ApiError::new(
                ErrorKind::Conflict,
                "duplicate_category",
                "the event already has a category of that name",
            ),
            InsertCategoryError::Store(err) => err.into(),
        }
    }
}

impl From<ReserveError> for ApiError {
    fn from(err: ReserveError) -> Self {
        // A fixed message is borrowed, not formatted: a sold-out herd gets thousands of these
        // a second. The test below keeps each one equal to the error's own text.
        match err {
            ReserveError::UnknownCategory => {
                ApiError::not_found("category_not_found", "no such ticket category")
            }
            ReserveError::SoldOut => {
                ApiError::new(ErrorKind::Conflict, "sold_out", "not enough tickets left")
            }
            ReserveError::LimitExceeded { .. } => {
                ApiError::new(ErrorKind::Conflict, "limit_exceeded", err.to_string())
            }
            ReserveError::IdempotencyKeyReused => ApiError::new(
                ErrorKind::Unprocessable,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            ),
            ReserveError::RateLimited { retry_after_secs } => {
                ApiError::new(ErrorKind::TooManyRequests, "rate_limited", err.to_string())
                    .retry_after(retry_after_secs)
            }
            ReserveError::NotAdmitted(err) => err.into(),
            ReserveError::Store(err) => err.into(),
        }
    }
}

impl From<SettleError> for ApiError {
    fn from(err: SettleError) -> Self {
        let message = err.to_string();
        match err {
            SettleError::NotFound => ApiError::not_found("reservation_not_found", message),
            SettleError::Expired => ApiError::new(ErrorKind::Gone, "expired", message),
            SettleError::AlreadyFinal(_) => {
                ApiError::new(ErrorKind::Conflict, "already_final", message)
            }
            SettleError::Store(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_error_says_the_same_to_the_caller() {
        let errors = [
            ReserveError::UnknownCategory,
            ReserveError::SoldOut,
            ReserveError::LimitExceeded { max: 4 },
            ReserveError::IdempotencyKeyReused,
            ReserveError::RateLimited {
                retry_after_secs: 3,
            },
        ];
        for err in errors {
            let text = err.to_string();
            assert_eq!(ApiError::from(err).message, text);
        }
    }
}
