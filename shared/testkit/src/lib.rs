//! Helpers for tests (feature `testkit`): the embedded stack on a clock that moves only when
//! told to, a category ready to sell, and a stock store that counts and fails on demand.

mod watched;

pub use watched::WatchedStock;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use adapter_memory::Embedded;
use domain::clock::ManualClock;
use domain::contracts::HoldRequest;
use domain::{
    Category, CategoryName, Event, EventId, EventName, PerUserLimit, Price, Qty, Reservation,
    StockCounts, TotalStock, UserId,
};

pub struct TestStack {
    pub embedded: Embedded,
    pub clock: Arc<ManualClock>,
}

impl TestStack {
    /// Holds last `ttl_secs`; the clock starts at 2030-01-01T00:00:00Z.
    pub fn new(ttl_secs: i64) -> Self {
        let start = Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let clock = Arc::new(ManualClock::new(start));
        let embedded = Embedded::new(clock.clone(), Duration::seconds(ttl_secs));
        Self { embedded, clock }
    }

    /// An event with one category "Floor" of `total` tickets, straight into the stores.
    pub async fn category(&self, total: u32, max_per_user: Option<u32>) -> (EventId, CategoryName) {
        let ctx = &self.embedded.context;
        let event = Event {
            id: EventId::generate(),
            name: EventName::parse("Test concert").expect("valid name"),
            date: self.now(),
            venue: None,
        };
        ctx.catalogue
            .insert_event(&event)
            .await
            .expect("memory catalogue");
        let category = Category {
            event_id: event.id,
            name: CategoryName::parse("Floor").expect("valid name"),
            total_stock: TotalStock::new(total.into()).expect("valid stock"),
            price: Price::from_cents(5000).expect("valid price"),
            max_per_user: max_per_user
                .map(|max| PerUserLimit::new(max.into()).expect("valid limit")),
        };
        ctx.catalogue
            .insert_category(&category)
            .await
            .expect("memory catalogue");
        ctx.stock
            .add_category(&category)
            .await
            .expect("memory stock");
        (event.id, category.name)
    }

    /// Holds `qty` tickets for `user_name` straight through the stock store, TTL from now.
    pub async fn hold(
        &self,
        event_id: EventId,
        category: &CategoryName,
        user_name: &str,
        qty: i64,
    ) -> Reservation {
        let ctx = &self.embedded.context;
        let now = self.now();
        let hold = HoldRequest {
            event_id,
            category: category.clone(),
            user: user(user_name),
            qty: Qty::new(qty).expect("valid qty"),
            idempotency_key: None,
            rate_limit: None,
            now,
            expires_at: now + ctx.reservation_ttl,
        };
        ctx.stock
            .reserve(hold)
            .await
            .expect("stock to hold")
            .reservation
    }

    /// The counters of the event's "Floor" category, as `category` makes it.
    pub async fn counts(&self, event_id: EventId) -> StockCounts {
        let floor = CategoryName::parse("Floor").expect("valid name");
        let stock = &self.embedded.context.stock;
        let counts = stock
            .counts(event_id, &[floor])
            .await
            .expect("memory stock");
        counts.first().expect("a Floor category").1
    }

    /// Panics unless every category satisfies `available + held + sold == total`.
    pub async fn assert_stock_consistent(&self) {
        let sale = self.embedded.context.stock.sale_changes(0).await;
        for category in sale.expect("memory stock").categories {
            assert!(
                category.is_consistent(),
                "stock invariant broken: {category:?}"
            );
        }
    }

    /// The test clock's time.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        use domain::clock::Clock;
        self.clock.now()
    }
}

pub fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid user id")
}
