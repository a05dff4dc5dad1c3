//! Refreshes the gauges that describe the services: Redis memory, the outbox backlog and the
//! PostgreSQL pool.

use std::sync::Arc;
use std::time::Duration;

use shared::adapters::postgres::Postgres;
use shared::adapters::redis::RedisStockStore;
use shared::metrics::{DB_OPEN_CONNECTIONS, OUTBOX_BACKLOG, REDIS_MEMORY_BYTES};
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(2);

pub async fn run_gauges(
    redis: Arc<RedisStockStore>,
    postgres: Arc<Postgres>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match redis.used_memory().await {
            Ok(bytes) => REDIS_MEMORY_BYTES.set(bytes.try_into().unwrap_or(i64::MAX)),
            Err(err) => tracing::debug!(%err, "redis memory gauge"),
        }
        match redis.outbox_backlog().await {
            Ok(backlog) => OUTBOX_BACKLOG.set(backlog.try_into().unwrap_or(i64::MAX)),
            Err(err) => tracing::debug!(%err, "outbox backlog gauge"),
        }
        DB_OPEN_CONNECTIONS.set(postgres.open_connections().into());
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}
