//! A catalogue that remembers what it read, for a short while, in front of another one.
//!
//! On an on-sale day availability is read far more often than anything else, and each read
//! asked PostgreSQL twice (the event, its categories). Events never change once created and
//! categories are only ever added, so a remembered answer can only lack what was added since:
//! a category added through this process is seen at once, one added through another process
//! (one container per function) within `ttl`.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use quick_cache::sync::Cache;

use chrono::{DateTime, Utc};
use domain::contracts::{Catalogue, InsertCategoryError};
use domain::error::StoreError;
use domain::waiting_room::{
    AdmitBudget, Admitted, Joined, QueueError, QueuePlace, RoomMark, WaitingRoom,
    WaitingRoomSettings,
};
use domain::{Category, Event, EventId, UserId};

/// How many events, and as many category lists, are remembered at most.
const CAPACITY: usize = 10_000;

/// Values read a moment ago, each kept for `ttl`, at most `CAPACITY` (the least used go
/// first). quick_cache has no expiry of its own, so each value carries when it was read.
struct Recent<K, V> {
    entries: Cache<K, (V, Instant)>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> Recent<K, V> {
    fn new(ttl: Duration) -> Self {
        Self {
            entries: Cache::new(CAPACITY),
            ttl,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let (value, read_at) = self.entries.get(key)?;
        (read_at.elapsed() < self.ttl).then_some(value)
    }

    fn insert(&self, key: K, value: V) {
        self.entries.insert(key, (value, Instant::now()));
    }

    fn forget(&self, key: &K) {
        self.entries.remove(key);
    }

    /// The value of `key`, read with `read` unless it was a moment ago. Concurrent misses
    /// for one key wait for a single read.
    async fn get_or_read<E>(
        &self,
        key: &K,
        read: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        let guard = match self.entries.get_value_or_guard_async(key).await {
            Ok((value, read_at)) if read_at.elapsed() < self.ttl => return Ok(value),
            Ok(_) => {
                self.entries.remove(key);
                match self.entries.get_value_or_guard_async(key).await {
                    Ok((value, _)) => return Ok(value),
                    Err(guard) => guard,
                }
            }
            Err(guard) => guard,
        };
        let value = read.await?;
        let _ = guard.insert((value.clone(), Instant::now()));
        Ok(value)
    }
}

pub struct CachedCatalogue {
    inner: Arc<dyn Catalogue>,
    /// Only events found: one created a moment later must not stay unknown.
    events: Recent<EventId, Event>,
    categories: Recent<EventId, Arc<Vec<Category>>>,
}

impl CachedCatalogue {
    pub fn new(inner: Arc<dyn Catalogue>, ttl: Duration) -> Self {
        Self {
            inner,
            events: Recent::new(ttl),
            categories: Recent::new(ttl),
        }
    }
}

#[async_trait]
impl Catalogue for CachedCatalogue {
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError> {
        self.inner.insert_event(event).await
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        if let Some(event) = self.events.get(&id) {
            return Ok(Some(event));
        }
        let event = self.inner.event(id).await?;
        if let Some(event) = &event {
            self.events.insert(id, event.clone());
        }
        Ok(event)
    }

    async fn insert_category(&self, category: &Category) -> Result<(), InsertCategoryError> {
        let inserted = self.inner.insert_category(category).await;
        self.categories.forget(&category.event_id);
        inserted
    }

    /// Concurrent misses for one event wait for a single read of the inner catalogue.
    async fn categories(&self, event: EventId) -> Result<Vec<Category>, StoreError> {
        let read = async { self.inner.categories(event).await.map(Arc::new) };
        let categories = self.categories.get_or_read(&event, read).await?;
        Ok(categories.to_vec())
    }
}

/// A waiting room whose settings are remembered for a short while, in front of another one:
/// `/reserve` asks for them on every call. A room set up or turned off through another
/// process takes effect here within `ttl`.
pub struct CachedWaitingRoom {
    inner: Arc<dyn WaitingRoom>,
    settings: Recent<EventId, Option<WaitingRoomSettings>>,
}

impl CachedWaitingRoom {
    pub fn new(inner: Arc<dyn WaitingRoom>, ttl: Duration) -> Self {
        Self {
            inner,
            settings: Recent::new(ttl),
        }
    }
}

#[async_trait]
impl WaitingRoom for CachedWaitingRoom {
    async fn configure(
        &self,
        event: EventId,
        settings: &WaitingRoomSettings,
    ) -> Result<(), StoreError> {
        let configured = self.inner.configure(event, settings).await;
        self.settings.forget(&event);
        configured
    }

    /// Concurrent misses for one event wait for a single read of the inner room.
    async fn settings(&self, event: EventId) -> Result<Option<WaitingRoomSettings>, StoreError> {
        self.settings
            .get_or_read(&event, self.inner.settings(event))
            .await
    }

    async fn join(
        &self,
        event: EventId,
        user: &UserId,
        draw: f64,
        now: DateTime<Utc>,
    ) -> Result<Joined, QueueError> {
        self.inner.join(event, user, draw, now).await
    }

    async fn place(
        &self,
        event: EventId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuePlace>, QueueError> {
        self.inner.place(event, user, now).await
    }

    async fn mark(&self, event: EventId) -> Result<Option<RoomMark>, StoreError> {
        self.inner.mark(event).await
    }

    async fn rooms(&self) -> Result<Vec<EventId>, StoreError> {
        self.inner.rooms().await
    }

    async fn admit(
        &self,
        event: EventId,
        budget: AdmitBudget,
        now: DateTime<Utc>,
    ) -> Result<Admitted, StoreError> {
        self.inner.admit(event, budget, now).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::MemoryCatalogue;
    use domain::{CategoryName, EventName, Price, TotalStock};

    /// A memory catalogue that counts how often its categories are read.
    #[derive(Default)]
    struct Counted {
        inner: MemoryCatalogue,
        category_reads: AtomicUsize,
    }

    #[async_trait]
    impl Catalogue for Counted {
        async fn insert_event(&self, event: &Event) -> Result<(), StoreError> {
            self.inner.insert_event(event).await
        }
        async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
            self.inner.event(id).await
        }
        async fn insert_category(&self, category: &Category) -> Result<(), InsertCategoryError> {
            self.inner.insert_category(category).await
        }
        async fn categories(&self, event: EventId) -> Result<Vec<Category>, StoreError> {
            self.category_reads.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.inner.categories(event).await
        }
    }

    fn event() -> Event {
        Event {
            id: EventId::generate(),
            name: EventName::parse("Night Show").unwrap(),
            date: chrono::Utc::now(),
            venue: None,
        }
    }

    fn category(event: &Event, name: &str) -> Category {
        Category {
            event_id: event.id,
            name: CategoryName::parse(name).unwrap(),
            total_stock: TotalStock::new(10).unwrap(),
            price: Price::from_cents(1000).unwrap(),
            max_per_user: None,
        }
    }

    fn names(categories: &[Category]) -> Vec<&str> {
        categories.iter().map(|c| c.name.as_str()).collect()
    }

    #[tokio::test]
    async fn concurrent_misses_read_the_inner_catalogue_once() {
        let inner = Arc::new(Counted::default());
        let cached = Arc::new(CachedCatalogue::new(inner.clone(), Duration::from_secs(60)));
        let show = event();
        cached.insert_event(&show).await.unwrap();
        cached
            .insert_category(&category(&show, "Floor"))
            .await
            .unwrap();

        let readers = (0..50).map(|_| {
            let cached = cached.clone();
            tokio::spawn(async move { cached.categories(show.id).await.unwrap() })
        });
        for read in futures_util::future::join_all(readers).await {
            assert_eq!(names(&read.unwrap()), ["Floor"]);
        }
        assert_eq!(inner.category_reads.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn what_was_added_is_seen_here_at_once_and_elsewhere_within_the_ttl() {
        let inner = Arc::new(MemoryCatalogue::default());
        let cached = CachedCatalogue::new(inner.clone(), Duration::from_millis(200));
        let show = event();

        // An event unknown a moment ago is found as soon as it exists.
        assert!(cached.event(show.id).await.unwrap().is_none());
        inner.insert_event(&show).await.unwrap();
        assert!(cached.event(show.id).await.unwrap().is_some());

        cached
            .insert_category(&category(&show, "Floor"))
            .await
            .unwrap();
        assert_eq!(names(&cached.categories(show.id).await.unwrap()), ["Floor"]);

        // Added by another process, straight into the shared catalogue.
        inner
            .insert_category(&category(&show, "Balcony"))
            .await
            .unwrap();
        assert_eq!(names(&cached.categories(show.id).await.unwrap()), ["Floor"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            names(&cached.categories(show.id).await.unwrap()),
            ["Floor", "Balcony"]
        );
    }
}
