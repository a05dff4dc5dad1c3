//! A stock store in front of another, for tests that need to see or break what reaches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use domain::contracts::{
    HoldRequest, ReservationChange, ReserveError, SaleChanges, SettleError, Settlement, StockStore,
};
use domain::error::StoreError;
use domain::{
    Category, CategoryName, EventId, Reservation, ReservationId, ReservationStatus, StockCounts,
    UserId,
};

/// Passes everything to `inner`, counting the reserves that reach it; with
/// [`WatchedStock::down_for_the_first_add`], its first `add_category` fails as a Redis that is
/// down for a moment would.
pub struct WatchedStock {
    inner: Arc<dyn StockStore>,
    reserves: AtomicUsize,
    fail_next_add: AtomicBool,
}

impl WatchedStock {
    pub fn new(inner: Arc<dyn StockStore>) -> Self {
        Self {
            inner,
            reserves: AtomicUsize::new(0),
            fail_next_add: AtomicBool::new(false),
        }
    }

    pub fn down_for_the_first_add(inner: Arc<dyn StockStore>) -> Self {
        let store = Self::new(inner);
        store.fail_next_add.store(true, Ordering::SeqCst);
        store
    }

    /// The reserves that reached the store.
    pub fn reserves(&self) -> usize {
        self.reserves.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl StockStore for WatchedStock {
    async fn add_category(&self, category: &Category) -> Result<(), StoreError> {
        if self.fail_next_add.swap(false, Ordering::SeqCst) {
            return Err(StoreError("redis: connection refused".into()));
        }
        self.inner.add_category(category).await
    }
    async fn counts(
        &self,
        event: EventId,
        names: &[CategoryName],
    ) -> Result<Vec<(CategoryName, StockCounts)>, StoreError> {
        self.inner.counts(event, names).await
    }
    async fn sale_changes(&self, since: u64) -> Result<SaleChanges, StoreError> {
        self.inner.sale_changes(since).await
    }
    async fn reserve(&self, hold: HoldRequest) -> Result<ReservationChange, ReserveError> {
        self.reserves.fetch_add(1, Ordering::SeqCst);
        self.inner.reserve(hold).await
    }
    async fn settle(
        &self,
        id: ReservationId,
        user: &UserId,
        settlement: Settlement,
        now: DateTime<Utc>,
    ) -> Result<ReservationChange, SettleError> {
        self.inner.settle(id, user, settlement, now).await
    }
    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        self.inner.expire_due(now, limit).await
    }
    async fn finished_holds(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        limit: usize,
    ) -> Result<Vec<(ReservationId, ReservationStatus)>, StoreError> {
        self.inner.finished_holds(now, retention, limit).await
    }
    async fn forget_holds(&self, ids: &[ReservationId]) -> Result<usize, StoreError> {
        self.inner.forget_holds(ids).await
    }
    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        self.inner.reservation(id).await
    }
}
