//! The broker goes down in the middle of a sale. Its own test binary, since it stops the
//! broker every other real-stack test uses (test binaries run one after another).

#[allow(dead_code)] // Shared with the other suites; this binary uses part of it.
#[path = "api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "stack/real.rs"]
mod real;

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;

use helpers::spawn_app_with;
use real::{stack, stored_statuses, until_stored};

fn broker(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local-stack.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "local-stack.sh {action} failed");
}

/// Stop the broker, keep reserving and confirming, start it again: every change reaches
/// PostgreSQL, none twice, and no request failed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_go_on_while_kafka_is_down_and_nothing_is_lost() {
    let stack = stack(4, "outage").await;
    let app = spawn_app_with(stack.settings.clone()).await;
    let event_id = app.event_with_floor(100, None).await;
    let before = app.hold("early", &event_id, 1).await;
    assert_eq!(
        app.confirm("early", &before, true).await.status(),
        StatusCode::OK
    );
    let db = stack.postgres().await;
    let stored = until_stored(&db, &event_id, &[("confirmed", 1)], Duration::from_secs(30)).await;
    assert_eq!(stored.get("confirmed"), Some(&1));

    broker("--stop-kafka");
    let refused_before = telemetry::EVENTS_PRODUCE_FAILED.get();
    let mut during = Vec::new();
    for fan in 0..30 {
        during.push(app.hold(&format!("fan-{fan}"), &event_id, 1).await);
    }
    for (fan, id) in during.iter().enumerate().take(20) {
        let paid = fan % 2 == 0;
        assert_eq!(
            app.confirm(&format!("fan-{fan}"), id, paid).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(app.floor(&event_id).await, (100, 79, 10, 11));
    // The relay has tried to send them and Kafka has refused: they wait in Redis, and none
    // reached PostgreSQL.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while telemetry::EVENTS_PRODUCE_FAILED.get() == refused_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never tried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored_statuses(&db, &event_id).await.get("held"), None);
    broker("--start-kafka");

    let expected = [("cancelled", 10), ("confirmed", 11), ("held", 10)];
    let stored = until_stored(&db, &event_id, &expected, Duration::from_secs(90)).await;
    assert_eq!(
        stored,
        expected.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    );
    app.stop().await;
    stack.drop_database().await;
}
