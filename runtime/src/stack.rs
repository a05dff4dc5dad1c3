//! Chooses and connects the adapters: in memory (the embedded default) or Redis + Kafka +
//! PostgreSQL (the real stack), behind the same contracts.

use std::sync::Arc;
use std::time::Duration;

use adapter_kafka::{KafkaEventSource, KafkaPublisher, ensure_topic};
use adapter_memory::{CachedCatalogue, CachedWaitingRoom};
use adapter_memory::{Embedded, MemoryCatalogue, MemoryReservationStore, MemoryStockStore};
use adapter_postgres::Postgres;
use adapter_redis::RedisStockStore;
use domain::Context;
use domain::clock::SystemClock;
use domain::contracts::EventSource;
use domain::waiting_room::AdmissionKey;

use crate::config::{FunctionName, Settings};
use crate::reconcile::{connect, restore_missing};

/// Partitions of the reservation topic: room for a few persist-reservations consumers.
const PARTITIONS: i32 = 3;
/// How long a process may miss a category another process added (see `CachedCatalogue`).
const CATALOGUE_CACHE_TTL: Duration = Duration::from_secs(1);
/// How long a process may miss a waiting room another process set up or turned off (see
/// `CachedWaitingRoom`).
const WAITING_ROOM_CACHE_TTL: Duration = Duration::from_secs(1);

pub struct Stack {
    pub context: Context,
    /// The reservation stream, when this process persists it.
    pub events: Option<Box<dyn EventSource>>,
    /// The outbox relay's two ends, when this process relays (real stack only).
    pub relay: Option<(Arc<RedisStockStore>, KafkaPublisher)>,
    /// The services whose health the gauges report (real stack only).
    pub services: Option<(Arc<RedisStockStore>, Arc<Postgres>)>,
    /// The embedded stores, for tests and checks.
    pub memory: Option<MemoryStores>,
}

#[derive(Clone)]
pub struct MemoryStores {
    pub catalogue: Arc<MemoryCatalogue>,
    pub stock: Arc<MemoryStockStore>,
    pub reservations: Arc<MemoryReservationStore>,
}

pub async fn assemble(settings: &Settings) -> Result<Stack, String> {
    let ttl = chrono::Duration::seconds(settings.reservation_ttl.into());
    let retention = settings.finished_hold_retention()?;
    let admission_key = Arc::new(AdmissionKey::from_secret(settings.jwt_secret().as_bytes()));
    let Some(real) = settings.stack.real()? else {
        let mut embedded = Embedded::new(Arc::new(SystemClock), ttl);
        embedded.context.reserve_rate_limit = settings.reserve_rate_limit();
        embedded.context.finished_hold_retention = retention;
        embedded.context.admission_key = admission_key;
        let persists = settings.mounts(FunctionName::PersistReservations);
        return Ok(Stack {
            context: embedded.context,
            events: persists.then(|| Box::new(embedded.events) as Box<dyn EventSource>),
            relay: None,
            services: None,
            memory: Some(MemoryStores {
                catalogue: embedded.catalogue,
                stock: embedded.stock,
                reservations: embedded.reservations,
            }),
        });
    };

    let (postgres, redis) = connect(&real, settings.stack.db_pool_size).await?;
    let (postgres, redis) = (Arc::new(postgres), Arc::new(redis));
    telemetry::DB_POOL_SIZE.set(settings.stack.db_pool_size.into());
    let kafka = settings.stack.kafka_settings(real.kafka_brokers);
    let restored = restore_missing(&postgres, &redis, &kafka)
        .await
        .map_err(|err| format!("reconcile: {err}"))?;
    if restored > 0 {
        tracing::warn!(
            restored,
            "Redis was missing categories: rebuilt them from PostgreSQL"
        );
    }

    let kafka_error = |err| format!("KAFKA_BROKERS: {err}");
    ensure_topic(&kafka, PARTITIONS)
        .await
        .map_err(kafka_error)?;
    let events = match settings.mounts(FunctionName::PersistReservations) {
        true => Some(
            Box::new(KafkaEventSource::new(&kafka).map_err(kafka_error)?) as Box<dyn EventSource>,
        ),
        false => None,
    };
    let relay = match settings.mounts(FunctionName::RelayOutbox) {
        true => Some((
            redis.clone(),
            KafkaPublisher::new(&kafka).map_err(kafka_error)?,
        )),
        false => None,
    };
    Ok(Stack {
        context: Context {
            catalogue: Arc::new(CachedCatalogue::new(postgres.clone(), CATALOGUE_CACHE_TTL)),
            stock: redis.clone(),
            reservations: postgres.clone(),
            clock: Arc::new(SystemClock),
            reservation_ttl: ttl,
            reserve_rate_limit: settings.reserve_rate_limit(),
            finished_hold_retention: retention,
            waiting_room: Arc::new(CachedWaitingRoom::new(
                redis.clone(),
                WAITING_ROOM_CACHE_TTL,
            )),
            admission_key,
            sold_out_hints: Arc::default(),
        },
        events,
        relay,
        services: Some((redis, postgres)),
        memory: None,
    })
}
