//! Kafka (rdkafka): the reservation stream between the stock store's outbox and
//! persist-reservations.
//!
//! - [`KafkaPublisher`]: what the outbox relay sends through; `Ok` means Kafka acknowledged every
//!   record, so only then may the relay trim its outbox.
//! - [`KafkaEventSource`]: the [`EventSource`](domain::contracts::EventSource) of the persist
//!   trigger; offsets are committed only when the caller says the batch is stored.
//! - [`ensure_topic`]: creates the topic at start-up.
//! - [`unconsumed_events`]: what the persist group has not stored yet, for reconcile.

mod publisher;
mod source;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use domain::ReservationEvent;
use domain::error::StoreError;

pub use publisher::{KafkaPublisher, OutboxRecord};
pub use source::KafkaEventSource;
pub use tail::unconsumed_events;

/// How long one call waits for the broker before it gives up: a down broker must turn into an
/// error the caller can retry, never a call that hangs.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the reservation stream lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// The reservation topic (the runtime's default: `reservations`).
    pub topic: String,
    /// The consumer group of persist-reservations (default: `persist-reservations`).
    pub group: String,
}

/// Creates `settings.topic` with `partitions` partitions; a topic that already exists is left
/// as it is (its partition count is not changed), so every instance may call this at start.
/// Replicas: one per broker, at most 3, so the same call fits a dev broker and a cluster.
pub async fn ensure_topic(settings: &KafkaSettings, partitions: i32) -> Result<(), StoreError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()
        .map_err(|err| kafka_error("creating the admin client", err))?;
    let admin = Arc::new(admin);
    let brokers = {
        let admin = Arc::clone(&admin);
        // Blocking (a metadata round trip): off the async workers.
        let count = tokio::task::spawn_blocking(move || {
            let metadata = admin.inner().fetch_metadata(None, BROKER_TIMEOUT)?;
            Ok::<_, KafkaError>(metadata.brokers().len())
        });
        tokio::time::timeout(BROKER_TIMEOUT + Duration::from_secs(1), count)
            .await
            .map_err(|_| StoreError("kafka: reading metadata: timed out".to_owned()))?
            .map_err(|err| kafka_error("reading metadata", err))?
            .map_err(|err| kafka_error("reading metadata", err))?
    };
    let replicas = i32::try_from(brokers.clamp(1, 3)).unwrap_or(1);
    let topic = NewTopic::new(
        &settings.topic,
        partitions,
        TopicReplication::Fixed(replicas),
    );
    let options = AdminOptions::new()
        .request_timeout(Some(BROKER_TIMEOUT))
        .operation_timeout(Some(BROKER_TIMEOUT));
    // The request timeout bounds the broker's answer; this bounds everything else.
    let results = tokio::time::timeout(
        BROKER_TIMEOUT + Duration::from_secs(1),
        admin.create_topics([&topic], &options),
    )
    .await
    .map_err(|_| {
        StoreError(format!(
            "kafka: creating topic {}: timed out",
            settings.topic
        ))
    })?
    .map_err(|err| kafka_error("creating the topic", err))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StoreError(format!("kafka: creating topic {name}: {code}")));
            }
        }
    }
    Ok(())
}

/// A Kafka failure as a store failure, saying what was being done.
fn kafka_error(doing: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError(format!("kafka: {doing}: {err}"))
}

/// What a record of the reservation topic holds.
enum Record {
    Event(ReservationEvent),
    /// An event of a version this build cannot read (a newer producer): it must not be
    /// skipped, only waited for by a consumer that reads it.
    UnknownVersion(u16),
    /// Not a reservation event at all (not JSON, no version).
    Unreadable(String),
}

/// Reads the version first, so an event of another version is told from garbage even when
/// its body has another shape.
fn decode(payload: Option<&[u8]>) -> Record {
    #[derive(serde::Deserialize)]
    struct Envelope {
        version: u16,
    }
    let Some(payload) = payload else {
        return Record::Unreadable("no payload".into());
    };
    match serde_json::from_slice::<Envelope>(payload) {
        Err(err) => Record::Unreadable(err.to_string()),
        Ok(envelope) if envelope.version != ReservationEvent::VERSION => {
            Record::UnknownVersion(envelope.version)
        }
        Ok(_) => match serde_json::from_slice(payload) {
            Ok(event) => Record::Event(event),
            Err(err) => Record::Unreadable(err.to_string()),
        },
    }
}
