use std::time::Duration;

use reqwest::StatusCode;
use ticketd::config::FunctionName;

use crate::helpers::{TestApp, error_code, spawn_app_with};
use crate::real::{TestStack, stack, stored_statuses, until_stored};

async fn redis(redis_url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// The keys of an event's categories (not their shards' indexes).
async fn category_keys(redis_url: &str, event_id: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("*:c:{event_id}:*"))
        .query_async(&mut redis(redis_url).await)
        .await
        .unwrap()
}

async fn stock_counters(redis_url: &str, event_id: &str) -> Vec<Option<u32>> {
    let keys = category_keys(redis_url, event_id).await;
    let Some(stock) = keys.iter().find(|key| key.ends_with(":stock")) else {
        return vec![None; 4];
    };
    redis::cmd("HMGET")
        .arg(stock)
        .arg(&["total", "available", "held", "sold"])
        .query_async(&mut redis(redis_url).await)
        .await
        .unwrap()
}

/// Runs `ticketd reconcile` on the test's stack, with `brokers` as KAFKA_BROKERS.
async fn reconcile(stack: &TestStack, brokers: &str) -> std::process::Output {
    let settings = &stack.settings.stack;
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .arg("reconcile")
        .env("REDIS_URL", stack.redis_url())
        .env("DATABASE_URL", stack.database_url())
        .env("KAFKA_BROKERS", brokers)
        .env("KAFKA_TOPIC", &settings.kafka_topic)
        .env("KAFKA_GROUP", &settings.kafka_group)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

fn succeeded(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until every shard's outbox is empty: the relay handed everything to Kafka.
async fn until_relayed(redis_url: &str) {
    let mut connection = redis(redis_url).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let outboxes: Vec<String> = redis::cmd("KEYS")
            .arg("{s*}:outbox")
            .query_async(&mut connection)
            .await
            .unwrap();
        let mut waiting = 0;
        for outbox in &outboxes {
            let length: u64 = redis::cmd("XLEN")
                .arg(outbox)
                .query_async(&mut connection)
                .await
                .unwrap();
            waiting += length;
        }
        if waiting == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} events never relayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every function but those named.
fn all_but(left_out: &[FunctionName]) -> Option<Vec<FunctionName>> {
    use clap::ValueEnum as _;
    let functions = FunctionName::value_variants()
        .iter()
        .filter(|function| !left_out.contains(function))
        .copied()
        .collect();
    Some(functions)
}

/// A sale whose changes PostgreSQL has not got yet: ann paid for 2 of 10 (at most 4 each),
/// bob holds 1 for 2 s. Returns the event and bob's hold.
async fn sale_behind_postgres(stack: &TestStack, left_out: &[FunctionName]) -> (String, String) {
    let mut settings = stack.settings.clone();
    settings.functions = all_but(left_out);
    settings.reservation_ttl = 2;
    let app = spawn_app_with(settings).await;
    let (event_id, live) = ann_pays_bob_holds(&app).await;
    assert_eq!(app.floor(&event_id).await, (10, 7, 1, 2));
    app.stop().await;
    (event_id, live)
}

/// An event with a category of 10 (at most 4 each): ann pays for 2, bob holds 1. Returns
/// the event and bob's hold.
async fn ann_pays_bob_holds(app: &TestApp) -> (String, String) {
    let event_id = app.event_with_floor(10, Some(4)).await;
    let bought = app.hold("ann", &event_id, 2).await;
    assert_eq!(
        app.confirm("ann", &bought, true).await.status(),
        StatusCode::OK
    );
    let live = app.hold("bob", &event_id, 1).await;
    (event_id, live)
}

/// Reconcile must not rebuild from a PostgreSQL that lacks a confirmation Kafka has: ann's
/// tickets would come back as available, and be sold again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_never_resells_what_only_kafka_knew() {
    let stack = stack(10, "reconcile_kafka").await;
    let redis_url = stack.redis_url().to_owned();
    let brokers = stack.settings.stack.kafka_brokers.clone().unwrap();
    // The relay runs, persist-reservations does not: the changes are in Kafka alone.
    let (event_id, live) = sale_behind_postgres(&stack, &[FunctionName::PersistReservations]).await;
    until_relayed(&redis_url).await;
    let db = stack.postgres().await;
    assert!(stored_statuses(&db, &event_id).await.is_empty());

    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut redis(&redis_url).await)
        .await
        .unwrap();
    // With Kafka out of reach PostgreSQL cannot be brought up to date: reconcile refuses.
    let refused = reconcile(&stack, "127.0.0.1:1").await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refusing to rebuild"));
    assert_eq!(stock_counters(&redis_url, &event_id).await, [None; 4]);

    let restored = succeeded(&reconcile(&stack, &brokers).await);
    assert_eq!(restored, "restored 1 categories from PostgreSQL\n");
    assert_eq!(
        stock_counters(&redis_url, &event_id).await,
        [Some(10), Some(7), Some(1), Some(2)]
    );

    // The whole stack again: bob's hold expires, ann's tickets stay sold, and PostgreSQL
    // ends with both.
    let app = spawn_app_with(stack.settings.clone()).await;
    let expected = [("confirmed", 1), ("expired", 1)];
    let stored = until_stored(&db, &event_id, &expected, Duration::from_secs(30)).await;
    assert_eq!(
        stored,
        expected.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    );
    assert_eq!(app.floor(&event_id).await, (10, 8, 0, 2));
    let late = app.confirm("bob", &live, true).await;
    assert_eq!(late.status(), StatusCode::GONE);
    app.stop().await;
    stack.drop_database().await;
}

/// The same with the relay stopped too: the changes are in the Redis outbox alone when the
/// category's own keys are lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_folds_in_what_only_the_outbox_knew() {
    let stack = stack(14, "reconcile_outbox").await;
    let redis_url = stack.redis_url().to_owned();
    let brokers = stack.settings.stack.kafka_brokers.clone().unwrap();
    let left_out = [FunctionName::PersistReservations, FunctionName::RelayOutbox];
    let (event_id, _) = sale_behind_postgres(&stack, &left_out).await;

    let lost = category_keys(&redis_url, &event_id).await;
    assert!(!lost.is_empty());
    redis::cmd("DEL")
        .arg(&lost)
        .query_async::<()>(&mut redis(&redis_url).await)
        .await
        .unwrap();
    assert_eq!(
        succeeded(&reconcile(&stack, &brokers).await),
        "restored 1 categories from PostgreSQL\n"
    );
    assert_eq!(
        stock_counters(&redis_url, &event_id).await,
        [Some(10), Some(7), Some(1), Some(2)]
    );
    let db = stack.postgres().await;
    let stored = stored_statuses(&db, &event_id).await;
    assert_eq!(stored.get("confirmed"), Some(&1));
    stack.drop_database().await;
}

/// Redis loses everything; `ticketd reconcile` rebuilds the counters and live holds from
/// PostgreSQL, and the sale goes on where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_redis_is_rebuilt_from_postgres() {
    let stack = stack(3, "reconcile").await;
    let redis_url = stack.redis_url().to_owned();
    let app = spawn_app_with(stack.settings.clone()).await;
    let (event_id, live) = ann_pays_bob_holds(&app).await;
    let dropped = app.hold("cat", &event_id, 3).await;
    assert_eq!(
        app.confirm("cat", &dropped, false).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.floor(&event_id).await, (10, 7, 1, 2));
    let db = stack.postgres().await;
    let expected = [("cancelled", 1), ("confirmed", 1), ("held", 1)];
    assert_eq!(
        until_stored(&db, &event_id, &expected, Duration::from_secs(30))
            .await
            .len(),
        3
    );
    app.stop().await;

    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut redis(&redis_url).await)
        .await
        .unwrap();
    assert_eq!(stock_counters(&redis_url, &event_id).await, [None; 4]);

    let brokers = stack.settings.stack.kafka_brokers.clone().unwrap();
    assert_eq!(
        succeeded(&reconcile(&stack, &brokers).await),
        "restored 1 categories from PostgreSQL\n"
    );
    assert_eq!(
        stock_counters(&redis_url, &event_id).await,
        [Some(10), Some(7), Some(1), Some(2)]
    );

    // The restored stack: bob's live hold still pays; ann's two tickets still count.
    let app = spawn_app_with(stack.settings.clone()).await;
    assert_eq!(
        app.confirm("bob", &live, true).await.status(),
        StatusCode::OK
    );
    let over = app.reserve("ann", &event_id, 3).await;
    assert_eq!(
        error_code(over, StatusCode::CONFLICT).await,
        "limit_exceeded"
    );
    assert_eq!(app.floor(&event_id).await, (10, 7, 0, 3));
    app.stop().await;
    stack.drop_database().await;
}
