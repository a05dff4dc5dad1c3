//! Prometheus metrics of the whole process, registered once in the default registry.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    TextEncoder, register_histogram, register_histogram_vec, register_int_counter,
    register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
};

// Registration fails only for a name registered twice: a programming error caught by any test.
const UNIQUE: &str = "metric names are unique";

pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "http_requests_total",
        "HTTP requests answered, by function, method and status.",
        &["function", "method", "status"]
    )
    .expect(UNIQUE)
});

pub static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "http_request_duration_seconds",
        "Time from request to response, by function.",
        &["function"],
        vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5
        ]
    )
    .expect(UNIQUE)
});

pub static RESERVATIONS: LazyLock<IntCounter> =
    LazyLock::new(|| register_int_counter!("reservation_total", "Holds created.").expect(UNIQUE));

pub static FAILED_RESERVATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "failed_reservation_total",
        "Reservations refused, by reason.",
        &["reason"]
    )
    .expect(UNIQUE)
});

/// `failed_reservation_total{reason="sold_out"}`, resolved once rather than by label on every
/// refusal: a sold-out herd is counted thousands of times a second.
pub static SOLD_OUT_RESERVATIONS: LazyLock<IntCounter> =
    LazyLock::new(|| FAILED_RESERVATIONS.with_label_values(&["sold_out"]));

pub static WAITING_ROOM_QUEUED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "waiting_room_queued",
        "Fans waiting in an event's waiting room, as the last admit round saw them.",
        &["event"]
    )
    .expect(UNIQUE)
});

/// By event: one room that stops admitting must show even while another admits.
pub static WAITING_ROOM_ADMITTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "waiting_room_admitted_total",
        "Fans admitted from an event's waiting room.",
        &["event"]
    )
    .expect(UNIQUE)
});

/// Before `opens_at` a room admits no one by design: alerts on a stalled queue need to know.
pub static WAITING_ROOM_OPEN: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "waiting_room_open",
        "1 once an event's waiting room admits in order of arrival (no opens_at, or it has \
         passed); 0 before opens_at, while joining fans are drawn into a random order.",
        &["event"]
    )
    .expect(UNIQUE)
});

pub static WAITING_ROOM_WAIT: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "waiting_room_wait_seconds",
        "Time from joining a waiting room (or its opening, if later) to admission.",
        vec![
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0
        ]
    )
    .expect(UNIQUE)
});

pub static WAITING_ROOM_STREAMS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "waiting_room_streams",
        "Waiting room event streams open on this process."
    )
    .expect(UNIQUE)
});

pub static HOLD_OUTCOMES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "hold_outcomes_total",
        "Holds that ended, by outcome (confirmed, cancelled, expired).",
        &["outcome"]
    )
    .expect(UNIQUE)
});

pub static EVENTS_PERSISTED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "persisted_events_total",
        "Reservation events written to the reservation store."
    )
    .expect(UNIQUE)
});

pub static TICKETS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "tickets",
        "Tickets of each category by state (total, available, held, sold).",
        &["category", "event", "state"]
    )
    .expect(UNIQUE)
});

pub static LIVE_HOLDS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "live_holds",
        "Holds of each category neither confirmed, cancelled nor expired yet.",
        &["category", "event"]
    )
    .expect(UNIQUE)
});

pub static STOCK_INVARIANT_BROKEN: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "stock_invariant_broken",
        "Categories whose available + held + sold differs from total (0 when all is well)."
    )
    .expect(UNIQUE)
});

pub static PERSIST_BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "persist_batch_size",
        "Events per batch written by persist-reservations.",
        vec![1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0]
    )
    .expect(UNIQUE)
});

pub static PERSIST_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "persist_batch_duration_seconds",
        "Time to write one batch to the reservation store.",
        vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
    )
    .expect(UNIQUE)
});

pub static PERSIST_STALLED_PARTITIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "persist_stalled_partitions",
        "Partitions persist-reservations stopped at an event of a version it cannot read \
         (a newer producer): nothing past it is committed until a consumer that reads it runs."
    )
    .expect(UNIQUE)
});

pub static PERSIST_RETRYING: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "persist_retrying",
        "1 while persist-reservations retries a batch the reservation store keeps refusing."
    )
    .expect(UNIQUE)
});

pub static PERSIST_SKIPPED_RECORDS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "persist_skipped_records_total",
        "Records of the reservation topic that are no reservation event at all (not JSON, \
         no version), skipped."
    )
    .expect(UNIQUE)
});

pub static EVENTS_PRODUCED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "events_produced_total",
        "Reservation events acknowledged by Kafka."
    )
    .expect(UNIQUE)
});

pub static EVENTS_PRODUCE_FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "events_produce_failed_total",
        "Reservation events Kafka did not acknowledge (they stay in the outbox and are retried)."
    )
    .expect(UNIQUE)
});

pub static OUTBOX_BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "outbox_backlog",
        "Events written with a state change and not yet acknowledged by Kafka."
    )
    .expect(UNIQUE)
});

pub static KAFKA_CONSUMER_LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kafka_consumer_lag",
        "High watermark minus committed offset of persist-reservations, by partition.",
        &["topic", "partition"]
    )
    .expect(UNIQUE)
});

pub static REDIS_MEMORY_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("redis_memory_bytes", "used_memory reported by Redis INFO.").expect(UNIQUE)
});

pub static DB_OPEN_CONNECTIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "db_open_connections",
        "Connections open in the PostgreSQL pool."
    )
    .expect(UNIQUE)
});

pub static DB_POOL_SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "db_pool_size",
        "Connections the PostgreSQL pool may open (DB_POOL_SIZE)."
    )
    .expect(UNIQUE)
});

/// Every registered metric in the Prometheus text format.
pub fn render() -> String {
    let mut out = Vec::with_capacity(8 * 1024);
    // Encoding into a Vec cannot fail for well-formed metric families.
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
