//! The Kafka adapter against a real broker: `KAFKA_BROKERS` (default 127.0.0.1:9092). When
//! nothing answers there, `infra/local-stack.sh --start-kafka` starts the local one.
//! Every test has its own topic and group, so they run in parallel.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Once;
use std::time::Duration;

use adapter_kafka::{KafkaEventSource, KafkaPublisher, KafkaSettings, OutboxRecord, ensure_topic};
use chrono::{DateTime, TimeDelta, Utc};
use domain::contracts::EventSource;
use domain::{
    CategoryName, EventId, Qty, Reservation, ReservationEvent, ReservationId, ReservationStatus,
    UserId,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use telemetry::{
    EVENTS_PRODUCE_FAILED, EVENTS_PRODUCED, KAFKA_CONSUMER_LAG, PERSIST_STALLED_PARTITIONS,
};

/// Bound on anything that waits for the broker in these tests.
const WAIT: Duration = Duration::from_secs(30);

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// Starts the local broker once if nothing answers on the first address.
fn broker_up() {
    static START: Once = Once::new();
    START.call_once(|| {
        let brokers = brokers();
        let first = brokers.split(',').next().unwrap_or_default().to_owned();
        let answers = || {
            first
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|addr| {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                })
        };
        if answers() {
            return;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local-stack.sh");
        // From `/`: tansu resolves a `sqlite://` path against its working directory.
        let status = std::process::Command::new("bash")
            .args([script, "--start-kafka"])
            .current_dir("/")
            .status()
            .expect("run infra/local-stack.sh");
        assert!(
            status.success() && answers(),
            "no Kafka broker at {brokers}"
        );
    });
}

/// A fresh topic (with `partitions`) and group for one test.
async fn fresh(test: &str, partitions: i32) -> KafkaSettings {
    broker_up();
    let suffix = uuid::Uuid::now_v7().simple();
    let settings = KafkaSettings {
        brokers: brokers(),
        topic: format!("test-{test}-{suffix}"),
        group: format!("test-{test}-{suffix}"),
    };
    within(ensure_topic(&settings, partitions))
        .await
        .expect("create topic");
    settings
}

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("the broker answers in time")
}

/// Version `seq` of reservation `id`: `updated_at` counts the versions, to check order.
fn event(id: ReservationId, seq: i64) -> ReservationEvent {
    let start = DateTime::<Utc>::from_timestamp(1_750_000_000, 0).expect("valid time");
    ReservationEvent::of(&Reservation {
        id,
        event_id: EventId(uuid::Uuid::nil()),
        category: CategoryName::parse("Floor").expect("valid name"),
        user_id: UserId::parse("user-1").expect("valid user"),
        qty: Qty::new(2).expect("valid qty"),
        status: ReservationStatus::Held,
        created_at: start,
        expires_at: start + TimeDelta::minutes(10),
        updated_at: start + TimeDelta::milliseconds(seq),
    })
}

fn seq(event: &ReservationEvent) -> i64 {
    (event.reservation.updated_at - event.reservation.created_at).num_milliseconds()
}

fn record(event: &ReservationEvent) -> OutboxRecord {
    OutboxRecord {
        key: event.reservation.id.to_string(),
        payload: serde_json::to_string(event).expect("serialise"),
    }
}

/// `count` versions of one reservation.
fn versions(count: i64) -> Vec<ReservationEvent> {
    let id = ReservationId::generate();
    (0..count).map(|n| event(id, n)).collect()
}

async fn publish(settings: &KafkaSettings, events: &[ReservationEvent]) {
    let publisher = KafkaPublisher::new(settings).expect("producer");
    let records: Vec<_> = events.iter().map(record).collect();
    within(publisher.publish(&records))
        .await
        .expect("published");
}

/// Exactly `count` events, asking never for more than are still missing.
async fn take(source: &mut KafkaEventSource, count: usize) -> Vec<ReservationEvent> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let batch = within(source.next_batch(count - events.len()))
            .await
            .expect("next_batch")
            .expect("the source is open");
        assert!(!batch.is_empty(), "a batch is never empty");
        assert!(batch.len() <= count - events.len(), "a batch respects max");
        events.extend(batch);
    }
    events
}

fn lag(settings: &KafkaSettings, partitions: i32) -> Vec<i64> {
    (0..partitions)
        .map(|p| {
            KAFKA_CONSUMER_LAG
                .with_label_values(&[settings.topic.as_str(), p.to_string().as_str()])
                .get()
        })
        .collect()
}

#[tokio::test]
async fn ensure_topic_is_idempotent() {
    let settings = fresh("ensure", 3).await;
    within(ensure_topic(&settings, 3))
        .await
        .expect("an existing topic is fine");
    let partitions = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .create()
            .expect("client");
        let metadata = consumer
            .fetch_metadata(Some(&settings.topic), WAIT)
            .expect("metadata");
        metadata.topics().first().map(|t| t.partitions().len())
    })
    .await
    .expect("metadata task");
    assert_eq!(partitions, Some(3));
}

#[tokio::test]
async fn published_events_come_out_in_order_per_key() {
    let settings = fresh("order", 3).await;
    let reservations: Vec<_> = (0..8).map(|_| versions(10)).collect();
    // Interleaved keys, in two publish calls.
    let mut all = Vec::new();
    for n in 0..10 {
        all.extend(reservations.iter().map(|versions| versions[n].clone()));
    }
    let produced = EVENTS_PRODUCED.get();
    publish(&settings, &all[..40]).await;
    publish(&settings, &all[40..]).await;
    assert!(EVENTS_PRODUCED.get() >= produced + 80);

    let mut source = KafkaEventSource::new(&settings).expect("consumer");
    let mut received = Vec::new();
    while received.len() < all.len() {
        let batch = within(source.next_batch(7)).await.expect("next_batch");
        let batch = batch.expect("open");
        assert!((1..=7).contains(&batch.len()));
        received.extend(batch);
    }
    assert_eq!(received.len(), all.len());
    let mut per_key: BTreeMap<ReservationId, Vec<i64>> = BTreeMap::new();
    for event in &received {
        per_key
            .entry(event.reservation.id)
            .or_default()
            .push(seq(event));
    }
    assert_eq!(per_key.len(), 8);
    for seqs in per_key.values() {
        assert_eq!(seqs, &(0..10).collect::<Vec<_>>());
    }
    for versions in &reservations {
        assert!(received.contains(&versions[9]), "events arrive intact");
    }
}

#[tokio::test]
async fn commit_is_kept_and_uncommitted_events_are_redelivered() {
    let settings = fresh("commit", 1).await;
    let events = versions(10);
    publish(&settings, &events).await;

    // A: stores and commits 4, then reads 3 more and stops before storing them.
    let mut first = KafkaEventSource::new(&settings).expect("consumer");
    assert_eq!(take(&mut first, 4).await, events[..4]);
    within(first.commit()).await.expect("commit");
    assert_eq!(take(&mut first, 3).await, events[4..7]);
    drop(first);

    // B, same group: resumes at the first uncommitted event, so 4..7 come again.
    let mut second = KafkaEventSource::new(&settings).expect("consumer");
    assert_eq!(take(&mut second, 6).await, events[4..]);
    within(second.commit()).await.expect("commit");
    second.close();
    let after_close = within(second.next_batch(10)).await.expect("next_batch");
    assert_eq!(after_close, None, "a closed source ends");
    drop(second);

    // C: everything so far is committed; only what is new arrives.
    let newer = event(events[0].reservation.id, 10);
    publish(&settings, std::slice::from_ref(&newer)).await;
    let mut third = KafkaEventSource::new(&settings).expect("consumer");
    assert_eq!(take(&mut third, 1).await, vec![newer]);
}

#[tokio::test]
async fn garbage_is_skipped_and_committed() {
    let settings = fresh("garbage", 1).await;
    let events = versions(3);
    let garbage = |payload: &str| OutboxRecord {
        key: events[0].reservation.id.to_string(),
        payload: payload.to_owned(),
    };
    let records = vec![
        record(&events[0]),
        garbage("not json"),
        record(&events[1]),
        garbage(r#"{"version":1}"#),
        garbage(""),
        record(&events[2]),
    ];
    let publisher = KafkaPublisher::new(&settings).expect("producer");
    within(publisher.publish(&records))
        .await
        .expect("published");

    let mut source = KafkaEventSource::new(&settings).expect("consumer");
    assert_eq!(take(&mut source, 3).await, events);
    within(source.commit()).await.expect("commit");
    within(source.report_lag()).await.expect("lag");
    assert_eq!(
        lag(&settings, 1),
        [0],
        "the skipped offsets are committed too"
    );
}

#[tokio::test]
async fn an_event_of_an_unknown_version_stops_its_partition() {
    let settings = fresh("unknown-version", 1).await;
    let events = versions(2);
    // A newer producer's event, of another shape altogether.
    let future = OutboxRecord {
        key: events[0].reservation.id.to_string(),
        payload: r#"{"version":99,"booking":{"id":"x"}}"#.to_owned(),
    };
    let records = vec![record(&events[0]), future, record(&events[1])];
    let publisher = KafkaPublisher::new(&settings).expect("producer");
    within(publisher.publish(&records))
        .await
        .expect("published");

    let mut source = KafkaEventSource::new(&settings).expect("consumer");
    assert_eq!(take(&mut source, 1).await, events[..1]);
    // Nothing at or past the unknown event comes out, however long one waits ...
    let waited = tokio::time::timeout(Duration::from_secs(3), source.next_batch(10)).await;
    assert!(waited.is_err(), "the partition went on: {waited:?}");
    assert_eq!(PERSIST_STALLED_PARTITIONS.get(), 1);
    // ... and nothing past it is committed: a consumer that reads it gets both again.
    within(source.commit()).await.expect("commit");
    within(source.report_lag()).await.expect("lag");
    assert_eq!(lag(&settings, 1), [2]);
}

#[tokio::test]
async fn lag_counts_until_commit() {
    let settings = fresh("lag", 2).await;
    let events: Vec<_> = (0..6).flat_map(|_| versions(2)).collect();
    publish(&settings, &events).await;

    let mut source = KafkaEventSource::new(&settings).expect("consumer");
    let received = take(&mut source, events.len()).await;
    assert_eq!(received.len(), events.len());
    within(source.report_lag()).await.expect("lag");
    // Nothing committed yet: every event counts, on whichever partition its key chose.
    let before = lag(&settings, 2);
    assert_eq!(
        before.iter().sum::<i64>(),
        12,
        "lag before commit: {before:?}"
    );

    within(source.commit()).await.expect("commit");
    within(source.report_lag()).await.expect("lag");
    assert_eq!(lag(&settings, 2), [0, 0]);
}

#[tokio::test]
async fn cancelled_next_batch_loses_nothing() {
    let settings = fresh("cancel", 1).await;
    let events = versions(60);
    publish(&settings, &events).await;

    let mut source = KafkaEventSource::new(&settings).expect("consumer");
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut cancelled = 0;
    let mut micros = 50;
    while received.len() < events.len() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        // Short, varying budgets: many calls are cancelled halfway through a batch.
        micros = micros * 7 % 20_000 + 50;
        match tokio::time::timeout(Duration::from_micros(micros), source.next_batch(8)).await {
            Ok(batch) => received.extend(batch.expect("next_batch").expect("open")),
            Err(_) => cancelled += 1,
        }
    }
    assert!(cancelled > 0);
    assert_eq!(received, events);
}

#[tokio::test]
async fn a_down_broker_fails_in_bounded_time() {
    let settings = KafkaSettings {
        // Nothing listens on port 1.
        brokers: "127.0.0.1:1".to_owned(),
        topic: "unreachable".to_owned(),
        group: "unreachable".to_owned(),
    };
    let failed = EVENTS_PRODUCE_FAILED.get();
    let publisher = KafkaPublisher::new(&settings).expect("producer");
    let records: Vec<_> = versions(2).iter().map(record).collect();
    let (published, created) =
        within(async { tokio::join!(publisher.publish(&records), ensure_topic(&settings, 1)) })
            .await;
    assert!(published.is_err());
    assert!(created.is_err());
    assert!(EVENTS_PRODUCE_FAILED.get() >= failed + 2);

    // The consumer waits for the broker to come back (librdkafka reconnects by itself): its
    // transient errors are logged, not returned one by one.
    let mut source = KafkaEventSource::new(&settings).expect("consumer");
    let waited = tokio::time::timeout(Duration::from_secs(2), source.next_batch(10)).await;
    assert!(waited.is_err(), "next_batch waits: {waited:?}");
    source.close();
    let closed = within(source.next_batch(10)).await.expect("next_batch");
    assert_eq!(closed, None);
}
