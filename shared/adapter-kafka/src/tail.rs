//! The reservation topic's unconsumed tail: every event past the persist group's committed
//! offsets. Reconcile applies it to PostgreSQL before rebuilding anything from there, so a
//! change Kafka has but PostgreSQL not yet is never lost (and its tickets never resold).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{BROKER_TIMEOUT, KafkaSettings, Record, decode, kafka_error};
use domain::ReservationEvent;
use domain::error::StoreError;

/// Reads every partition from the group's committed offset (its start when none) to its
/// high watermark, without joining the group or committing. An error, never a partial
/// answer, when the broker cannot be read to the end or an event is of an unknown version.
pub async fn unconsumed_events(
    settings: &KafkaSettings,
) -> Result<Vec<ReservationEvent>, StoreError> {
    let settings = settings.clone();
    let limit = BROKER_TIMEOUT * 4;
    let read = tokio::task::spawn_blocking(move || read_tail(&settings, BROKER_TIMEOUT * 3));
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(kafka_error("reading the topic's tail", join)),
        Err(_) => Err(StoreError(format!(
            "kafka: the topic's tail could not be read within {limit:?}"
        ))),
    }
}

fn read_tail(
    settings: &KafkaSettings,
    within: Duration,
) -> Result<Vec<ReservationEvent>, StoreError> {
    let topic = settings.topic.as_str();
    let failed = |doing| move |err| kafka_error(doing, err);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        // Only to read the group's offsets: without `subscribe` it never joins the group.
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("client.id", "ticketd-reconcile")
        .create()
        .map_err(failed("creating the tail reader"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(failed("reading metadata"))?;
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(topic, partition.id());
    }
    let committed = consumer
        .committed_offsets(partitions, BROKER_TIMEOUT)
        .map_err(failed("reading committed offsets"))?;
    // Per partition, the offset to read up to (exclusive).
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for element in committed.elements_for_topic(topic) {
        let partition = element.partition();
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
            .map_err(failed("reading watermarks"))?;
        let start = match element.offset() {
            Offset::Offset(next) => next.max(low),
            _ => low,
        };
        if start < high {
            ends.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(start))
                .map_err(failed("assigning"))?;
        }
    }
    let mut events = Vec::new();
    if ends.is_empty() {
        return Ok(events);
    }
    consumer.assign(&assignment).map_err(failed("assigning"))?;
    let deadline = Instant::now() + within;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(StoreError(format!(
                "kafka: partitions {:?} of {topic} could not be read to their end",
                ends.keys().collect::<Vec<_>>()
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(failed("reading the topic's tail"))?;
        let partition = message.partition();
        match decode(message.payload()) {
            Record::Event(event) => events.push(event),
            Record::UnknownVersion(version) => {
                return Err(StoreError(format!(
                    "kafka: partition {partition} offset {} holds an event of version \
                     {version}, which this ticketd cannot read",
                    message.offset()
                )));
            }
            Record::Unreadable(_) => {} // not an event: persist skips it too
        }
        if ends
            .get(&partition)
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&partition);
        }
    }
    Ok(events)
}
