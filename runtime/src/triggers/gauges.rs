//! Refreshes the gauges: every category's tickets by state, live holds and the stock
//! invariant, in every mode; on the real stack also Redis memory, the outbox backlog and the
//! PostgreSQL pool. Only categories that changed since the last round are read, so the cost
//! follows the sale, not the number of categories ever created.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use adapter_postgres::Postgres;
use adapter_redis::RedisStockStore;
use domain::contracts::{CategorySale, StockStore};
use domain::{CategoryName, EventId};
use telemetry::{
    DB_OPEN_CONNECTIONS, LIVE_HOLDS, OUTBOX_BACKLOG, REDIS_MEMORY_BYTES, STOCK_INVARIANT_BROKEN,
    TICKETS,
};
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(2);

pub async fn run_gauges(
    stock: Arc<dyn StockStore>,
    services: Option<(Arc<RedisStockStore>, Arc<Postgres>)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sale = SaleGauges::default();
    loop {
        sale.refresh(&*stock).await;
        if let Some((redis, postgres)) = &services {
            service_health(redis, postgres).await;
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// What the sale gauges were last set from.
#[derive(Default)]
struct SaleGauges {
    /// The stock store's mark: categories changed since it are read next.
    since: u64,
    /// Whether each category's stock invariant holds, as last read.
    consistent: HashMap<(EventId, CategoryName), bool>,
}

impl SaleGauges {
    async fn refresh(&mut self, stock: &dyn StockStore) {
        let changes = match stock.sale_changes(self.since).await {
            Ok(changes) => changes,
            Err(err) => return tracing::debug!(%err, "sale gauges"),
        };
        for category in &changes.categories {
            set_category(category);
            let key = (category.event_id, category.name.clone());
            self.consistent.insert(key, category.is_consistent());
        }
        let broken = self.consistent.values().filter(|sound| !**sound).count();
        STOCK_INVARIANT_BROKEN.set(i64::try_from(broken).unwrap_or(i64::MAX));
        self.since = changes.next;
    }
}

/// A category whose counters cannot be read keeps its last ticket counts (it counts as
/// broken in `stock_invariant_broken`).
fn set_category(category: &CategorySale) {
    let (name, event) = (category.name.as_str(), category.event_id.to_string());
    if let Some(counts) = category.counts {
        let states = [
            ("total", counts.total),
            ("available", counts.available),
            ("held", counts.held),
            ("sold", counts.sold),
        ];
        for (state, tickets) in states {
            TICKETS
                .with_label_values(&[name, event.as_str(), state])
                .set(tickets.into());
        }
    }
    LIVE_HOLDS
        .with_label_values(&[name, event.as_str()])
        .set(category.live_holds.into());
}

async fn service_health(redis: &RedisStockStore, postgres: &Postgres) {
    match redis.used_memory().await {
        Ok(bytes) => REDIS_MEMORY_BYTES.set(bytes.try_into().unwrap_or(i64::MAX)),
        Err(err) => tracing::debug!(%err, "redis memory gauge"),
    }
    match redis.outbox_backlog().await {
        Ok(backlog) => OUTBOX_BACKLOG.set(backlog.try_into().unwrap_or(i64::MAX)),
        Err(err) => tracing::debug!(%err, "outbox backlog gauge"),
    }
    DB_OPEN_CONNECTIONS.set(postgres.open_connections().into());
}
