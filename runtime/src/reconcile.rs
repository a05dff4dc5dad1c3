//! `ticketd reconcile`: when Redis lost categories (or broke their counters), rebuild them
//! from PostgreSQL. Also run at every start of the real stack.
//!
//! PostgreSQL may be behind: the persist consumer lags, the relay has not sent everything.
//! A confirmation that only Redis and Kafka knew would come back as a live hold, expire, and
//! its tickets be sold again. So nothing is rebuilt before PostgreSQL has every event still
//! in the Redis outboxes and every event Kafka holds past the persist group's offsets; when
//! either cannot be read, reconcile refuses.

use adapter_kafka::{KafkaSettings, unconsumed_events};
use adapter_postgres::Postgres;
use adapter_redis::{RedisStockStore, StockState};
use domain::ReservationEvent;
use domain::contracts::ReservationStore;
use domain::error::StoreError;

use crate::config::RealStack;

/// Events written to PostgreSQL per statement while catching up.
const APPLY_BATCH: usize = 1000;

/// Rebuilds every category of the catalogue whose stock Redis is missing or has broken;
/// returns how many. Sound categories are never touched, so this is safe while the stack
/// serves (the scripts refuse to act on a missing stock meanwhile).
pub async fn restore_missing(
    postgres: &Postgres,
    redis: &RedisStockStore,
    kafka: &KafkaSettings,
) -> Result<usize, StoreError> {
    let mut unsound = Vec::new();
    for category in postgres.all_categories().await? {
        match redis.stock_state(&category).await? {
            StockState::Sound => {}
            state => unsound.push((category, state)),
        }
    }
    if unsound.is_empty() {
        return Ok(0);
    }
    catch_up(postgres, redis, kafka).await.map_err(|err| {
        StoreError(format!(
            "refusing to rebuild {} categories: PostgreSQL cannot be brought up to date: {err}",
            unsound.len()
        ))
    })?;
    let mut restored = 0;
    for (category, state) in unsound {
        let reservations = postgres
            .reservations_of(category.event_id, &category.name)
            .await?;
        let replace = state == StockState::Broken;
        if redis
            .restore_category(&category, &reservations, replace)
            .await?
        {
            restored += 1;
        }
    }
    Ok(restored)
}

/// Applies to PostgreSQL what it may not have yet; applying is idempotent, so events it
/// already has change nothing.
async fn catch_up(
    postgres: &Postgres,
    redis: &RedisStockStore,
    kafka: &KafkaSettings,
) -> Result<(), StoreError> {
    let outbox = redis.outbox_events().await?;
    apply(postgres, &outbox).await?;
    let unconsumed = unconsumed_events(kafka).await?;
    apply(postgres, &unconsumed).await?;
    tracing::info!(
        outbox = outbox.len(),
        kafka = unconsumed.len(),
        "PostgreSQL brought up to date before rebuilding"
    );
    Ok(())
}

async fn apply(postgres: &Postgres, events: &[ReservationEvent]) -> Result<(), StoreError> {
    for batch in events.chunks(APPLY_BATCH) {
        postgres.apply(batch).await?;
    }
    Ok(())
}

/// Connects to PostgreSQL (applying its migrations) and Redis, naming the setting that failed.
pub async fn connect(
    real: &RealStack<'_>,
    pool_size: u32,
) -> Result<(Postgres, RedisStockStore), String> {
    let postgres = Postgres::connect(real.database_url, pool_size)
        .await
        .map_err(|err| format!("DATABASE_URL: {err}"))?;
    postgres
        .migrate()
        .await
        .map_err(|err| format!("migrations: {err}"))?;
    let redis = RedisStockStore::connect(&real.redis)
        .await
        .map_err(|err| format!("{}: {err}", real.redis.setting()))?
        .with_replica_acks(real.replica_acks)
        .await
        .map_err(|err| format!("{}: {err}", real.redis.setting()))?;
    Ok((postgres, redis))
}

/// The `reconcile` command: connects to the three, restores, reports.
pub async fn reconcile(stack: &crate::config::StackSettings) -> Result<usize, String> {
    let real = stack.real()?.ok_or(
        "reconcile needs Redis (REDIS_URL or REDIS_CLUSTER_NODES), DATABASE_URL and KAFKA_BROKERS",
    )?;
    let (postgres, redis) = connect(&real, 2).await?;
    restore_missing(&postgres, &redis, &stack.kafka_settings(real.kafka_brokers))
        .await
        .map_err(|err| format!("reconcile: {err}"))
}
