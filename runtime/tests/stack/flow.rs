use std::time::Duration;

use reqwest::StatusCode;
use ticketd::Settings;

use crate::helpers::{body, spawn_app_with};
use crate::real::{stack, until_stored};

/// Holds, payments, cancellations, an idempotent retry and expiries through HTTP; afterwards
/// PostgreSQL holds exactly the final states and the counters add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_postgres_once() {
    let stack = stack(1, "flow").await;
    let app = spawn_app_with(Settings {
        reservation_ttl: 2,
        ..stack.settings.clone()
    })
    .await;
    let event_id = app.event_with_floor(20, Some(4)).await;

    let paid = [
        app.hold("ann", &event_id, 2).await,
        app.hold("bob", &event_id, 1).await,
    ];
    let unpaid = app.hold("cat", &event_id, 1).await;
    let retried = body(app.reserve_with_key("eve", &event_id, 1, "order-7").await).await;
    let again = body(app.reserve_with_key("eve", &event_id, 1, "order-7").await).await;
    assert_eq!(again, retried);
    let expiring = app.hold("dan", &event_id, 3).await;
    let held_at = tokio::time::Instant::now();
    for (user, id) in [("ann", &paid[0]), ("bob", &paid[1])] {
        assert_eq!(app.confirm(user, id, true).await.status(), StatusCode::OK);
    }
    let eve = retried["reservation_id"].as_str().unwrap();
    assert_eq!(app.confirm("eve", eve, true).await.status(), StatusCode::OK);
    assert_eq!(
        app.confirm("cat", &unpaid, false).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.floor(&event_id).await, (20, 13, 3, 4));

    // dan's hold expires 2 s after it was made, and within a second after that: the sweeper
    // runs every 250 ms.
    let expired = (20, 16, 0, 4);
    let mut floor = app.floor(&event_id).await;
    while floor != expired && held_at.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        floor = app.floor(&event_id).await;
    }
    assert_eq!(
        floor,
        expired,
        "not expired {:?} after the hold",
        held_at.elapsed()
    );
    let late = app.confirm("dan", &expiring, true).await;
    assert_eq!(late.status(), StatusCode::GONE);

    let db = stack.postgres().await;
    let expected = [("cancelled", 1), ("confirmed", 3), ("expired", 1)];
    let stored = until_stored(&db, &event_id, &expected, Duration::from_secs(30)).await;
    assert_eq!(
        stored,
        expected.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    );
    let sold: i64 = db
        .query_one(
            "SELECT coalesce(sum(qty), 0)::bigint FROM reservations WHERE event_id = $1 AND status = 'confirmed'",
            &[&uuid::Uuid::parse_str(&event_id).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sold, 4);

    // The real stack's gauges, refreshed every 2 s, and the relay and persist counters.
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    for name in [
        "redis_memory_bytes ",
        "outbox_backlog ",
        "db_open_connections ",
        "db_pool_size 4",
        "events_produced_total ",
        "persist_batch_size_count ",
        "persist_batch_duration_seconds_count ",
        &format!(
            "kafka_consumer_lag{{partition=\"0\",topic=\"{}\"}}",
            stack.settings.stack.kafka_topic
        ),
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    app.stop().await;
    stack.drop_database().await;
}
