//! The outbox relay: moves events from the Redis outbox streams to Kafka, deleting them from
//! Redis only once Kafka acknowledged them. While Kafka is down events wait in Redis and
//! reservations go on; a crash between acknowledgement and deletion only sends duplicates,
//! which the persist function's upserts absorb.

use std::sync::Arc;
use std::time::Duration;

use adapter_kafka::{KafkaPublisher, OutboxRecord};
use adapter_redis::RedisStockStore;
use domain::error::StoreError;
use tokio::sync::watch;

/// Events read per shard per round.
const BATCH: usize = 500;
/// Pause after the first empty round; it doubles while the outbox stays empty, up to
/// `IDLE_MAX`, so an idle relay costs Redis a few commands a second, and the first event
/// after a lull waits at most that long.
const IDLE: Duration = Duration::from_millis(25);
const IDLE_MAX: Duration = Duration::from_millis(500);
/// Pause after a failure (Kafka or Redis down).
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// On stop, how many rounds may still flush the outbox.
const FLUSH_ROUNDS: usize = 20;

pub async fn run_outbox_relay(
    redis: Arc<RedisStockStore>,
    kafka: KafkaPublisher,
    mut stop: watch::Receiver<bool>,
) {
    let mut idle = IDLE;
    loop {
        let pause = match relay_once(&redis, &kafka).await {
            Ok(0) => {
                let pause = idle;
                idle = (idle * 2).min(IDLE_MAX);
                pause
            }
            Ok(_) => {
                idle = IDLE;
                Duration::ZERO
            }
            Err(err) => {
                tracing::warn!(%err, "outbox relay: will retry; events wait in Redis");
                RETRY_AFTER
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => break,
        }
    }
    // HTTP and the timer have stopped: what is in the outbox now is all there will be.
    for _ in 0..FLUSH_ROUNDS {
        match relay_once(&redis, &kafka).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(%err, "outbox relay: left events in Redis for the next relay");
                return;
            }
        }
    }
}

/// Relays one batch; returns how many events Kafka acknowledged.
async fn relay_once(redis: &RedisStockStore, kafka: &KafkaPublisher) -> Result<usize, StoreError> {
    let entries = redis.outbox_batch(BATCH).await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let records: Vec<OutboxRecord> = entries
        .iter()
        .map(|entry| OutboxRecord {
            key: entry.key.clone(),
            payload: entry.payload.clone(),
        })
        .collect();
    kafka.publish(&records).await?;
    redis.trim_outbox(&entries).await?;
    Ok(entries.len())
}
