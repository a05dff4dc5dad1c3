//! `ticketd reconcile`: when Redis comes back empty (or lost some categories), rebuild their
//! counters and live holds from PostgreSQL. Also run at every start of the real stack.

use adapter_postgres::Postgres;
use adapter_redis::RedisStockStore;
use domain::error::StoreError;

/// Restores every category of the catalogue that Redis does not have; returns how many.
/// Categories Redis has are never touched, so this is safe while the stack serves.
pub async fn restore_missing(
    postgres: &Postgres,
    redis: &RedisStockStore,
) -> Result<usize, StoreError> {
    let mut restored = 0;
    for category in postgres.all_categories().await? {
        if redis.has_category(&category).await? {
            continue;
        }
        let reservations = postgres
            .reservations_of(category.event_id, &category.name)
            .await?;
        if redis.restore_category(&category, &reservations).await? {
            restored += 1;
        }
    }
    Ok(restored)
}

/// Connects to PostgreSQL (applying its migrations) and Redis, naming the setting that failed.
pub async fn connect(
    redis_url: &str,
    database_url: &str,
    pool_size: u32,
) -> Result<(Postgres, RedisStockStore), String> {
    let postgres = Postgres::connect(database_url, pool_size)
        .await
        .map_err(|err| format!("DATABASE_URL: {err}"))?;
    postgres
        .migrate()
        .await
        .map_err(|err| format!("migrations: {err}"))?;
    let redis = RedisStockStore::connect(redis_url)
        .await
        .map_err(|err| format!("REDIS_URL: {err}"))?;
    Ok((postgres, redis))
}

/// The `reconcile` command: connects to both, restores, reports.
pub async fn reconcile(redis_url: &str, database_url: &str) -> Result<usize, String> {
    let (postgres, redis) = connect(redis_url, database_url, 2).await?;
    restore_missing(&postgres, &redis)
        .await
        .map_err(|err| format!("reconcile: {err}"))
}
