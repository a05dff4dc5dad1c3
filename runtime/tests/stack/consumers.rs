//! Three persist-reservations processes share the consumer group. One is SIGKILLed in the
//! middle of a sale; the other two take its partitions over, and PostgreSQL ends with exactly
//! what every client was answered: no event lost, none applied out of order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use adapter_postgres::Postgres;
use clap::ValueEnum;
use domain::{CategoryName, EventId, Reservation, ReservationStatus};
use futures_util::future::join_all;
use reqwest::StatusCode;
use ticketd::Settings;
use ticketd::config::FunctionName;

use crate::helpers::{TestApp, body, spawn_app_with};
use crate::process::Process;
use crate::real::stack;

/// Clients changing reservations at once.
const CLIENTS: usize = 32;
/// Changes answered before the kill, at least: the consumers are busy when one dies.
const CHANGES_BEFORE_KILL: usize = 500;
/// Changes answered after the kill: events pile up on the dead member's partition.
const CHANGES_AFTER_KILL: usize = 2000;

/// Per reservation id, the reservation as the last 2xx answer about it showed it.
type Answers = BTreeMap<String, Reservation>;

/// Ignored: on the local broker, tansu 0.6.0, a member whose session expires is dropped from a
/// formed group without a new generation, so its partitions stay assigned to it and are never
/// read again (a member joining later does not help). Run it against a Kafka broker with
/// `cargo test -p ticketd --test stack consumers -- --ignored`.
#[ignore = "tansu 0.6.0 never reassigns a crashed member's partitions"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_is_replaced_without_loss_or_rewind() {
    let stack = stack(8, "consumers").await;
    let topic = stack.settings.stack.kafka_topic.clone();
    let persist_only = Settings {
        functions: Some(vec![FunctionName::PersistReservations]),
        ..stack.settings.clone()
    };
    let mut consumers = join_all((0..3).map(|_| Process::start(&persist_only))).await;
    // Three members, three partitions: one each once the group has settled.
    let settled = until(Duration::from_secs(30), async || {
        for consumer in &consumers {
            if consumer_metrics(consumer, &topic).await.lag.is_empty() {
                return false;
            }
        }
        true
    })
    .await;
    assert!(
        settled,
        "the three consumers were not all assigned a partition"
    );

    // The sale: every function but persist, and the outbox relayed to Kafka.
    let mounted = FunctionName::value_variants()
        .iter()
        .copied()
        .filter(|function| *function != FunctionName::PersistReservations)
        .collect();
    let app = Arc::new(
        spawn_app_with(Settings {
            functions: Some(mounted),
            ..stack.settings.clone()
        })
        .await,
    );
    let event_id = Arc::new(app.event_with_floor(1_000_000, None).await);
    let changes = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (app, event_id) = (app.clone(), event_id.clone());
            let (changes, stop) = (changes.clone(), stop.clone());
            tokio::spawn(change_reservations(client, app, event_id, changes, stop))
        })
        .collect();

    let victim = consumers.remove(0);
    let busy = until(Duration::from_secs(30), async || {
        let metrics = consumer_metrics(&victim, &topic).await;
        changes.load(Ordering::Relaxed) >= CHANGES_BEFORE_KILL
            && metrics.persisted > 0
            && metrics.lag.values().any(|&lag| lag > 0)
    })
    .await;
    assert!(
        busy,
        "the victim never stored events while lagging on a partition of its own"
    );
    let last_words = consumer_metrics(&victim, &topic).await;
    victim.kill().await;
    let at_kill = changes.load(Ordering::Relaxed);
    let after_kill = until(Duration::from_secs(60), async || {
        changes.load(Ordering::Relaxed) >= at_kill + CHANGES_AFTER_KILL
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut told = Answers::new();
    for answers in join_all(clients).await {
        told.extend(answers.unwrap());
    }
    assert!(after_kill, "too few changes after the kill");

    // The dead member's partitions moved to the two others.
    let taken_over = until(Duration::from_secs(45), async || {
        let mut partitions = BTreeSet::new();
        for consumer in &consumers {
            partitions.extend(consumer_metrics(consumer, &topic).await.lag.into_keys());
        }
        partitions == BTreeSet::from([0, 1, 2])
    })
    .await;
    assert!(
        taken_over,
        "the survivors did not take over every partition"
    );

    // Each reservation stored exactly as last answered: a lost final event leaves it `held`,
    // a stale event applied over a later one shows the older state and time, and a row
    // count above the answers would be a reservation stored twice.
    let postgres = Postgres::connect(stack.database_url(), 2).await.unwrap();
    let event = EventId::parse(&event_id).unwrap();
    let floor = CategoryName::parse("Floor").unwrap();
    let mut stored = Answers::new();
    let complete = until(Duration::from_secs(45), async || {
        stored = postgres
            .reservations_of(event, &floor)
            .await
            .unwrap()
            .into_iter()
            .map(|reservation| (reservation.id.to_string(), reservation))
            .collect();
        stored == told
    })
    .await;
    let differing = told
        .iter()
        .filter(|(id, answered)| stored.get(*id) != Some(answered))
        .take(5)
        .collect::<Vec<_>>();
    assert!(
        complete,
        "PostgreSQL holds {} reservations, {} were answered; e.g. answered {differing:#?}",
        stored.len(),
        told.len()
    );

    // PostgreSQL agrees with the stock counters in Redis.
    let tickets = |status: ReservationStatus| -> u64 {
        let of_status = stored.values().filter(|r| r.status == status);
        of_status.map(|r| u64::from(r.qty.get())).sum()
    };
    let (_, _, held, sold) = app.floor(&event_id).await;
    assert_eq!(
        (
            tickets(ReservationStatus::Held),
            tickets(ReservationStatus::Confirmed)
        ),
        (held, sold)
    );
    let count = |status: ReservationStatus| told.values().filter(|r| r.status == status).count();
    let mut survivors_persisted = 0;
    for consumer in &consumers {
        survivors_persisted += consumer_metrics(consumer, &topic).await.persisted;
    }
    eprintln!(
        "consumers: {} changes ({at_kill} before the SIGKILL) to {} reservations: {} held, \
         {} confirmed, {} cancelled, all stored as answered; the victim had stored {} events \
         and lagged on {:?}, the survivors {survivors_persisted}",
        changes.load(Ordering::Relaxed),
        told.len(),
        count(ReservationStatus::Held),
        count(ReservationStatus::Confirmed),
        count(ReservationStatus::Cancelled),
        last_words.persisted,
        last_words.lag,
    );

    for consumer in consumers {
        consumer.stop().await;
    }
    let Ok(app) = Arc::try_unwrap(app) else {
        panic!("a client still holds the app");
    };
    app.stop().await;
    stack.drop_database().await;
}

/// One client until `stop`: each round a new user holds one or two tickets, then pays
/// (a third of the rounds), cancels (a third) or keeps the hold. Every change must be
/// answered 2xx; `changes` counts them.
async fn change_reservations(
    client: usize,
    app: Arc<TestApp>,
    event_id: Arc<String>,
    changes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Answers {
    let mut answers = Answers::new();
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let user = format!("fan-{client}-{round}");
        let response = app.reserve(&user, &event_id, 1 + round % 2).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let hold: Reservation = serde_json::from_value(body(response).await).unwrap();
        let id = hold.id.to_string();
        answers.insert(id.clone(), hold);
        changes.fetch_add(1, Ordering::Relaxed);
        if round % 3 != 0 {
            let response = app.confirm(&user, &id, round % 3 == 1).await;
            assert_eq!(response.status(), StatusCode::OK);
            let finished = serde_json::from_value(body(response).await).unwrap();
            answers.insert(id, finished);
            changes.fetch_add(1, Ordering::Relaxed);
        }
    }
    answers
}

/// What a persist process's /metrics says about it.
struct ConsumerMetrics {
    /// Its partitions of the topic, with their lag (refreshed every 2 s).
    lag: BTreeMap<i32, i64>,
    /// Events it has written to PostgreSQL.
    persisted: u64,
}

async fn consumer_metrics(consumer: &Process, topic: &str) -> ConsumerMetrics {
    let text = reqwest::get(format!("http://{}/metrics", consumer.addr))
        .await
        .and_then(|response| response.error_for_status())
        .expect("/metrics")
        .text()
        .await
        .expect("/metrics' text");
    let of_topic = format!("topic=\"{topic}\"");
    let mut metrics = ConsumerMetrics {
        lag: BTreeMap::new(),
        persisted: 0,
    };
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("persisted_events_total ") {
            metrics.persisted = value.parse().expect("a count");
        } else if line.starts_with("kafka_consumer_lag{") && line.contains(&of_topic) {
            let (labels, value) = line.rsplit_once(' ').expect("a sample");
            let partition = labels
                .split("partition=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("a partition label");
            metrics.lag.insert(
                partition.parse().expect("a partition"),
                value.parse().expect("a lag"),
            );
        }
    }
    metrics
}

/// Asks `check` every 200 ms until it holds or `within` has passed; says whether it held.
async fn until(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
