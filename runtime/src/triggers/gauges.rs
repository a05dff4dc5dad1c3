//! Refreshes the gauges: every category's tickets by state, live holds and the stock
//! invariant, in every mode; on the real stack also Redis memory, the outbox backlog and the PostgreSQL pool.

use std::sync::Arc;
use std::time::Duration;

use adapter_postgres::Postgres;
use adapter_redis::RedisStockStore;
use domain::contracts::StockStore;
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
    loop {
        sale(&*stock).await;
        if let Some((redis, postgres)) = &services {
            service_health(redis, postgres).await;
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn sale(stock: &dyn StockStore) {
    let all = match stock.all_counts().await {
        Ok(all) => all,
        Err(err) => return tracing::debug!(%err, "ticket gauges"),
    };
    let mut broken = 0;
    for (event, category, counts) in all {
        let event = event.to_string();
        let states = [
            ("total", counts.total),
            ("available", counts.available),
            ("held", counts.held),
            ("sold", counts.sold),
        ];
        for (state, tickets) in states {
            TICKETS
                .with_label_values(&[category.as_str(), event.as_str(), state])
                .set(tickets.into());
        }
        if !counts.is_consistent() {
            broken += 1;
        }
    }
    STOCK_INVARIANT_BROKEN.set(broken);

    match stock.live_holds().await {
        Ok(all) => {
            for (event, category, holds) in all {
                LIVE_HOLDS
                    .with_label_values(&[category.as_str(), &event.to_string()])
                    .set(holds.into());
            }
        }
        Err(err) => tracing::debug!(%err, "live holds gauge"),
    }
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
