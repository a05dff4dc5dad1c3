use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{error_code, spawn_app_with};
use crate::real::{stack, until_stored};

async fn stock_counters(redis_url: &str, event_id: &str) -> Vec<Option<u32>> {
    let client = redis::Client::open(redis_url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HMGET")
        .arg(format!("{{c:{event_id}:Floor}}:stock"))
        .arg(&["total", "available", "held", "sold"])
        .query_async(&mut connection)
        .await
        .unwrap()
}

/// Redis loses everything; `ticketd reconcile` rebuilds the counters and live holds from
/// PostgreSQL, and the sale goes on where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_redis_is_rebuilt_from_postgres() {
    let stack = stack(3, "reconcile").await;
    let redis_url = stack.settings.stack.redis_url.clone().unwrap();
    let app = spawn_app_with(stack.settings.clone()).await;
    let event_id = app.event_with_floor(10, Some(4)).await;
    let bought = app.hold("ann", &event_id, 2).await;
    assert_eq!(
        app.confirm("ann", &bought, true).await.status(),
        StatusCode::OK
    );
    let live = app.hold("bob", &event_id, 1).await;
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

    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    assert_eq!(stock_counters(&redis_url, &event_id).await, [None; 4]);

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .arg("reconcile")
        .env("REDIS_URL", &redis_url)
        .env("DATABASE_URL", stack.database_url())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
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
