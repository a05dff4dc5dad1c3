//! The consuming end: persist-reservations reads batches and commits them once stored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::time::Instant;

use super::{BROKER_TIMEOUT, KafkaSettings, Record, decode, kafka_error};
use domain::ReservationEvent;
use domain::contracts::EventSource;
use domain::error::StoreError;
use telemetry::{KAFKA_CONSUMER_LAG, PERSIST_SKIPPED_RECORDS, PERSIST_STALLED_PARTITIONS};

/// After the first message, how long a batch keeps taking what the consumer already fetched.
const GATHER_WINDOW: Duration = Duration::from_millis(5);

/// The reservation topic, read as a member of the persist group.
pub struct KafkaEventSource {
    /// Behind an `Arc` so blocking calls can run on `spawn_blocking`; `None` only in `drop`
    /// (taken there to leave the group off the async workers).
    consumer: Option<Arc<StreamConsumer>>,
    settings: KafkaSettings,
    /// Taken from the consumer, not yet returned: kept here so that a cancelled `next_batch`
    /// loses nothing (the consumer has already moved past them).
    received: VecDeque<Received>,
    /// Per partition, one past the last offset returned: what `commit` stores.
    to_commit: BTreeMap<i32, i64>,
    closed: bool,
    /// Partitions stopped at an event of an unknown version: paused, never committed past.
    stalled: BTreeSet<i32>,
    /// Partitions with a lag gauge, so a partition that moved elsewhere loses its gauge.
    lag_reported: Mutex<BTreeSet<i32>>,
}

/// One message, decoded; `event` is `None` for a payload that is not a reservation event.
struct Received {
    partition: i32,
    offset: i64,
    event: Option<ReservationEvent>,
}

impl KafkaEventSource {
    /// Joins `settings.group` and subscribes to `settings.topic`; the topic should exist
    /// ([`ensure_topic`](super::ensure_topic)). Call inside a tokio runtime.
    pub fn new(settings: &KafkaSettings) -> Result<Self, StoreError> {
        Ok(Self {
            consumer: Some(Arc::new(consumer(settings)?)),
            settings: settings.clone(),
            received: VecDeque::new(),
            to_commit: BTreeMap::new(),
            closed: false,
            stalled: BTreeSet::new(),
            lag_reported: Mutex::new(BTreeSet::new()),
        })
    }

    /// Sets `kafka_consumer_lag{topic,partition}` for each partition assigned to this member:
    /// high watermark minus committed offset (the low watermark when nothing is committed yet).
    pub async fn report_lag(&self) -> Result<(), StoreError> {
        let consumer = Arc::clone(self.consumer()?);
        let topic = self.settings.topic.clone();
        let lags = blocking(move || partition_lags(&consumer, &topic)).await?;
        let mut reported = self
            .lag_reported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for &(partition, lag) in &lags {
            let label = partition.to_string();
            KAFKA_CONSUMER_LAG
                .with_label_values(&[self.settings.topic.as_str(), label.as_str()])
                .set(lag);
        }
        let now: BTreeSet<i32> = lags.iter().map(|&(partition, _)| partition).collect();
        for gone in reported.difference(&now) {
            let label = gone.to_string();
            let _ = KAFKA_CONSUMER_LAG
                .remove_label_values(&[self.settings.topic.as_str(), label.as_str()]);
        }
        *reported = now;
        Ok(())
    }

    fn consumer(&self) -> Result<&Arc<StreamConsumer>, StoreError> {
        self.consumer
            .as_ref()
            .ok_or_else(|| StoreError("kafka: consumer dropped".to_owned()))
    }

    /// librdkafka reconnects and rejoins by itself, so a transient error (broker down, ...) is
    /// only logged: returned, each of the many queued during an outage would cost the caller a
    /// retry pause after the broker is back (measured: 19 s of stale errors after a restart).
    /// A fatal error ends this consumer: a new one takes its place and the error is returned.
    fn on_error(&mut self, err: KafkaError) -> Result<(), StoreError> {
        if !matches!(err, KafkaError::MessageConsumptionFatal(_)) {
            tracing::warn!(%err, topic = %self.settings.topic, "kafka consumer error (retrying)");
            return Ok(());
        }
        tracing::error!(%err, topic = %self.settings.topic, "kafka consumer failed; replacing it");
        // The new member resumes at the committed offsets: it delivers all of these again.
        self.received.clear();
        self.to_commit.clear();
        let fresh = consumer(&self.settings)?;
        if let Some(old) = self.consumer.replace(Arc::new(fresh)) {
            leave(old);
        }
        Err(kafka_error("receiving", err))
    }

    /// Reads one message into owned data; `None` when it must not be returned. A record that
    /// is no reservation event is counted and skipped (its offset is committed), so one bad
    /// record never stops the stream. An event of an unknown version stops its partition:
    /// nothing at or past it is returned or committed, and the partition is paused, until a
    /// consumer that reads that version takes over (a rolling upgrade finishing).
    fn receive(&mut self, message: &BorrowedMessage<'_>) -> Option<Received> {
        let (partition, offset) = (message.partition(), message.offset());
        if self.stalled.contains(&partition) {
            return None;
        }
        let event = match decode(message.payload()) {
            Record::Event(event) => Some(event),
            Record::UnknownVersion(version) => {
                tracing::error!(
                    topic = message.topic(),
                    partition,
                    offset,
                    version,
                    "an event of an unknown version: this partition stops here until a \
                     ticketd that reads it consumes it"
                );
                self.stall(partition);
                return None;
            }
            Record::Unreadable(why) => {
                tracing::warn!(topic = message.topic(), partition, offset, %why,
                    "skipping a record that is not a reservation event");
                PERSIST_SKIPPED_RECORDS.inc();
                None
            }
        };
        Some(Received {
            partition,
            offset,
            event,
        })
    }

    /// Stops `partition`: what was received of it and not returned goes back to Kafka.
    fn stall(&mut self, partition: i32) {
        self.stalled.insert(partition);
        self.received
            .retain(|received| received.partition != partition);
        PERSIST_STALLED_PARTITIONS.set(i64::try_from(self.stalled.len()).unwrap_or(i64::MAX));
        if let Some(consumer) = &self.consumer {
            let mut paused = TopicPartitionList::new();
            paused.add_partition(&self.settings.topic, partition);
            if let Err(err) = consumer.pause(&paused) {
                tracing::warn!(%err, partition, "could not pause a stalled partition");
            }
        }
    }

    /// Adds what the consumer has already fetched, until `max` events wait or the window ends.
    async fn gather(&mut self, max: usize) -> Result<(), StoreError> {
        let until = Instant::now() + GATHER_WINDOW;
        let mut events = self.received.iter().filter(|r| r.event.is_some()).count();
        while events < max {
            // A handle of its own: a message borrows the consumer while `self` changes.
            let Some(consumer) = self.consumer.clone() else {
                break;
            };
            match tokio::time::timeout_at(until, consumer.recv()).await {
                Ok(Ok(message)) => {
                    if let Some(received) = self.receive(&message) {
                        events += usize::from(received.event.is_some());
                        self.received.push_back(received);
                    }
                }
                Ok(Err(err)) => self.on_error(err)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Takes up to `max` events off the front, with the undecodable messages among them, and
    /// marks their offsets for the next commit.
    fn take(&mut self, max: usize) -> Vec<ReservationEvent> {
        let mut batch = Vec::with_capacity(max.min(self.received.len()));
        while batch.len() < max {
            let Some(received) = self.received.pop_front() else {
                break;
            };
            self.to_commit
                .insert(received.partition, received.offset + 1);
            batch.extend(received.event);
        }
        batch
    }
}

#[async_trait]
impl EventSource for KafkaEventSource {
    async fn report_lag(&mut self) -> Result<(), StoreError> {
        KafkaEventSource::report_lag(self).await
    }

    /// Nothing held back and, on every partition this member has, nothing past the committed
    /// offset. Before the group assigns partitions, not yet.
    async fn caught_up(&mut self) -> Result<bool, StoreError> {
        if !self.received.is_empty() || !self.to_commit.is_empty() {
            return Ok(false);
        }
        let consumer = Arc::clone(self.consumer()?);
        let topic = self.settings.topic.clone();
        let lags = blocking(move || partition_lags(&consumer, &topic)).await?;
        Ok(!lags.is_empty() && lags.iter().all(|&(_, lag)| lag == 0))
    }

    /// Cancel-safe: a message leaves the consumer only into `self.received`.
    async fn next_batch(
        &mut self,
        max: usize,
    ) -> Result<Option<Vec<ReservationEvent>>, StoreError> {
        let max = max.max(1);
        loop {
            while self.received.is_empty() {
                let consumer = match &self.consumer {
                    Some(consumer) if !self.closed => Arc::clone(consumer),
                    _ => return Ok(None),
                };
                match consumer.recv().await {
                    Ok(message) => {
                        if let Some(received) = self.receive(&message) {
                            self.received.push_back(received);
                        }
                    }
                    Err(err) => self.on_error(err)?,
                }
            }
            if !self.closed {
                self.gather(max).await?;
            }
            let batch = self.take(max);
            // Only undecodable messages so far: keep waiting for an event.
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
        }
    }

    /// Commits synchronously, so that after `Ok` the group resumes after these events.
    /// Partitions revoked since they were read are not committed (their new owner has its own
    /// progress, which must not move back): their events come again, and the call says so.
    async fn commit(&mut self) -> Result<(), StoreError> {
        if self.to_commit.is_empty() {
            return Ok(());
        }
        let consumer = Arc::clone(self.consumer()?);
        let topic = self.settings.topic.clone();
        let offsets = self.to_commit.clone();
        let revoked = blocking(move || {
            let assigned = consumer
                .assignment()
                .map_err(|err| kafka_error("reading the assignment", err))?;
            let mut list = TopicPartitionList::new();
            let mut revoked = Vec::new();
            for (partition, next) in offsets {
                if assigned.find_partition(&topic, partition).is_some() {
                    list.add_partition_offset(&topic, partition, Offset::Offset(next))
                        .map_err(|err| kafka_error("committing", err))?;
                } else {
                    revoked.push(partition);
                }
            }
            if list.count() > 0 {
                consumer
                    .commit(&list, CommitMode::Sync)
                    .map_err(|err| kafka_error("committing", err))?;
            }
            Ok(revoked)
        })
        .await?;
        self.to_commit.clear();
        if revoked.is_empty() {
            Ok(())
        } else {
            Err(StoreError(format!(
                "kafka: partitions {revoked:?} of {} were revoked before the commit; \
                 their uncommitted events will be delivered again",
                self.settings.topic
            )))
        }
    }

    fn close(&mut self) {
        // The group membership ends on drop; until then `commit` still works for what was
        // returned. What was not committed is delivered again to the next member.
        self.closed = true;
    }
}

impl Drop for KafkaEventSource {
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            leave(consumer);
        }
    }
}

/// A consumer of the reservation topic in the persist group, subscribed.
fn consumer(settings: &KafkaSettings) -> Result<StreamConsumer, StoreError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group)
        .set("client.id", "ticketd-persist-reservations")
        // Offsets move only when `commit` says the batch is stored.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A new group starts from the oldest event, not from now: nothing is skipped.
        .set("auto.offset.reset", "earliest")
        // A crashed member's partitions move to the others within this time.
        .set("session.timeout.ms", "10000")
        .create()
        .map_err(|err| kafka_error("creating the consumer", err))?;
    consumer
        .subscribe(&[&settings.topic])
        .map_err(|err| kafka_error("subscribing", err))?;
    Ok(consumer)
}

/// Leaving the group waits for the broker: done on a blocking thread when in a runtime.
fn leave(consumer: Arc<StreamConsumer>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(move || drop(consumer));
    }
}

/// Lag of each partition assigned to `consumer`. Blocking: several broker round trips.
fn partition_lags(consumer: &StreamConsumer, topic: &str) -> Result<Vec<(i32, i64)>, StoreError> {
    let assigned = consumer
        .assignment()
        .map_err(|err| kafka_error("reading the assignment", err))?;
    if assigned.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = consumer
        .committed_offsets(assigned, BROKER_TIMEOUT)
        .map_err(|err| kafka_error("reading committed offsets", err))?;
    let mut lags = Vec::new();
    for element in committed.elements_for_topic(topic) {
        let partition = element.partition();
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
            .map_err(|err| kafka_error("reading watermarks", err))?;
        let next = match element.offset() {
            Offset::Offset(next) => next,
            _ => low,
        };
        // Never negative: a broker that reports a stale high watermark is not "ahead".
        lags.push((partition, (high - next).max(0)));
    }
    Ok(lags)
}

/// Runs a blocking rdkafka call off the async workers, bounded in time. If it times out the
/// call still finishes on its thread; the caller just stops waiting.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    // Each broker call inside is bounded by BROKER_TIMEOUT; this is the backstop.
    let limit = BROKER_TIMEOUT * 2;
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(call)).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(kafka_error("blocking call", join)),
        Err(_) => Err(StoreError(format!("kafka: no answer within {limit:?}"))),
    }
}
