//! The producing end: the outbox relay publishes batches and trims only what Kafka acknowledged.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::time::Instant;

use super::{BROKER_TIMEOUT, KafkaSettings, kafka_error};
use domain::error::StoreError;
use telemetry::{EVENTS_PRODUCE_FAILED, EVENTS_PRODUCED};

/// One outbox entry, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// The reservation id: one key per reservation keeps its events in order (one partition).
    pub key: String,
    /// The event's JSON, serialised by whoever wrote the outbox.
    pub payload: String,
}

/// Publishes outbox batches to the reservation topic.
pub struct KafkaPublisher {
    /// Replaced after a failed batch (see `publish`); cloning it is cheap (an `Arc`).
    producer: Mutex<FutureProducer>,
    settings: KafkaSettings,
}

impl KafkaPublisher {
    /// Connects lazily: a broker that is down shows up as failed batches, not here.
    pub fn new(settings: &KafkaSettings) -> Result<Self, StoreError> {
        Ok(Self {
            producer: Mutex::new(producer(settings)?),
            settings: settings.clone(),
        })
    }

    /// Sends every record at once and returns `Ok` only when Kafka has acknowledged all of them.
    /// After `Err` some records may have been stored anyway: the caller sends the whole batch
    /// again and the consumer's idempotent writes absorb the duplicates.
    pub async fn publish(&self, records: &[OutboxRecord]) -> Result<(), StoreError> {
        let producer = self.lock().clone();
        let mut batch = Batch::default();
        for record in records {
            if let Err(err) = self.enqueue(&producer, record, &mut batch).await {
                // Later records would only be sent again with the retry: stop here.
                batch.error.get_or_insert(err);
                break;
            }
        }
        while let Some(delivery) = batch.pending.pop_front() {
            batch.settle(delivery.await);
        }
        let unsent = records.len() as u64 - batch.acknowledged;
        EVENTS_PRODUCED.inc_by(batch.acknowledged);
        EVENTS_PRODUCE_FAILED.inc_by(unsent);
        let Some(err) = batch.error else {
            return Ok(());
        };
        self.replace(producer);
        Err(StoreError(format!(
            "kafka: {unsent} of {} records not acknowledged: {err}",
            records.len()
        )))
    }

    /// Swaps in a new producer after a failed batch. The old one would, once the broker is
    /// back, bump its epoch to reset the sequences of its timed-out records (KIP-360); tansu
    /// 0.6 panics on that request and stops serving. A new producer asks for a new id
    /// instead, which every broker handles; the retried batch needs no old sequence anyway.
    fn replace(&self, failed: FutureProducer) {
        match producer(&self.settings) {
            Ok(fresh) => {
                let mut current = self.lock();
                // Another failed call may have replaced it already.
                if current.client().native_ptr() == failed.client().native_ptr() {
                    *current = fresh;
                }
            }
            Err(err) => tracing::warn!(%err, "kafka: keeping the producer, no new one"),
        }
        // Destroying a producer waits for its threads and the broker: not on an async worker.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(failed));
        }
    }

    fn lock(&self) -> MutexGuard<'_, FutureProducer> {
        self.producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands `record` to librdkafka's queue. When that queue is full, waits for our own oldest
    /// record (or a moment) to make room, for at most the delivery timeout.
    async fn enqueue(
        &self,
        producer: &FutureProducer,
        record: &OutboxRecord,
        batch: &mut Batch,
    ) -> Result<(), String> {
        let give_up = Instant::now() + BROKER_TIMEOUT;
        let mut attempt = FutureRecord::to(&self.settings.topic)
            .key(&record.key)
            .payload(&record.payload);
        loop {
            match producer.send_result(attempt) {
                Ok(delivery) => {
                    batch.pending.push_back(delivery);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < give_up =>
                {
                    attempt = back;
                    match batch.pending.pop_front() {
                        Some(delivery) => batch.settle(delivery.await),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((err, _)) => return Err(err.to_string()),
            }
        }
    }
}

/// An idempotent producer that gives up on a record after `BROKER_TIMEOUT`.
fn producer(settings: &KafkaSettings) -> Result<FutureProducer, StoreError> {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", "ticketd-outbox-relay")
        // Retries never duplicate nor reorder records within a partition...
        .set("enable.idempotence", "true")
        // ...and an acknowledged record is on every in-sync replica.
        .set("acks", "all")
        // librdkafka otherwise retries for 5 minutes: fail the batch instead, it stays in
        // the outbox and the relay retries it.
        .set("message.timeout.ms", BROKER_TIMEOUT.as_millis().to_string())
        .create()
        .map_err(|err| kafka_error("creating the producer", err))
}

/// The records of one `publish` call in flight, and how they ended.
#[derive(Default)]
struct Batch {
    pending: VecDeque<DeliveryFuture>,
    acknowledged: u64,
    error: Option<String>,
}

impl Batch {
    fn settle(&mut self, outcome: <DeliveryFuture as std::future::Future>::Output) {
        match outcome {
            Ok(Ok(_)) => self.acknowledged += 1,
            Ok(Err((err, _))) => {
                self.error.get_or_insert_with(|| err.to_string());
            }
            // Only when the producer is dropped, which `&self` rules out; still not a panic.
            Err(_) => {
                self.error
                    .get_or_insert_with(|| "producer closed".to_owned());
            }
        }
    }
}
