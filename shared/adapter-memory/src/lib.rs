//! In-process adapters: the whole flow in one process with nothing to install. Also the
//! cache the real stack puts in front of its catalogue.

mod cached;
mod catalogue;
mod reservations;
mod sharded;
mod stock;
mod stream;
mod waiting_room;

use std::sync::Arc;

use chrono::Duration;

pub use cached::{CachedCatalogue, CachedWaitingRoom};
pub use catalogue::MemoryCatalogue;
pub use reservations::MemoryReservationStore;
pub use stock::MemoryStockStore;
pub use stream::{MemoryEventSink, MemoryEventSource, channel};
pub use waiting_room::MemoryWaitingRoom;

use domain::clock::Clock;
use domain::context::{Context, DEFAULT_FINISHED_HOLD_RETENTION};
use domain::waiting_room::AdmissionKey;

/// The embedded stack: memory adapters wired together, and the stream's consuming end.
pub struct Embedded {
    pub context: Context,
    pub events: MemoryEventSource,
    pub catalogue: Arc<MemoryCatalogue>,
    pub stock: Arc<MemoryStockStore>,
    pub reservations: Arc<MemoryReservationStore>,
}

impl Embedded {
    pub fn new(clock: Arc<dyn Clock>, reservation_ttl: Duration) -> Self {
        let (sink, events) = channel();
        let stock = Arc::new(MemoryStockStore::new(sink));
        let reservations = Arc::new(MemoryReservationStore::default());
        let catalogue = Arc::new(MemoryCatalogue::default());
        let context = Context {
            catalogue: catalogue.clone(),
            stock: stock.clone(),
            reservations: reservations.clone(),
            clock,
            reservation_ttl,
            reserve_rate_limit: None,
            finished_hold_retention: DEFAULT_FINISHED_HOLD_RETENTION,
            waiting_room: Arc::new(MemoryWaitingRoom::default()),
            admission_key: Arc::new(AdmissionKey::random()),
            sold_out_hints: Arc::default(),
        };
        Self {
            context,
            events,
            catalogue,
            stock,
            reservations,
        }
    }
}

/// Locks a mutex even if a thread panicked while holding it: every critical section here
/// leaves the state whole before anything that could panic.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
