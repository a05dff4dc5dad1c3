//! `/ready` follows Redis: 503 while it is down, 200 again once it is back. The test runs a
//! Redis server of its own, on a free port, so stopping it disturbs nobody else.

use std::net::TcpListener;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::process::{Child, Command};

use crate::helpers::{TestApp, error_code};
use crate::real::stack;

/// `redis-server` on `port`, no persistence; answers PING before this returns.
async fn redis_server(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server (Debian's redis-server package)");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    for _ in 0..100 {
        if let Ok(mut connection) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on {port} did not answer in 5 s");
}

/// Polls /ready (up to 20 s) until it answers `status`.
async fn until_ready_is(app: &TestApp, status: StatusCode) -> reqwest::Response {
    let mut last = None;
    for _ in 0..100 {
        let response = app.get("/ready", None).await;
        if response.status() == status {
            return response;
        }
        last = Some(response.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("/ready never answered {status} (last {last:?})");
}

#[tokio::test]
async fn ready_follows_redis() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = redis_server(port).await;
    let mut stack = stack(7, "ready").await;
    stack.settings.stack.redis_url = Some(format!("redis://127.0.0.1:{port}").into());
    let running = ticketd::spawn(stack.settings.clone()).await.unwrap();
    let app = TestApp::at(running.addr);

    let ready = until_ready_is(&app, StatusCode::OK).await;
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        ready["dependencies"],
        serde_json::json!(["redis", "postgres"])
    );

    redis.kill().await.unwrap();
    let down = until_ready_is(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(down.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(down, StatusCode::SERVICE_UNAVAILABLE).await,
        "dependency_unavailable"
    );
    // Liveness is not readiness: the process still lives.
    assert_eq!(app.get("/health", None).await.status(), StatusCode::OK);

    let _redis = redis_server(port).await;
    until_ready_is(&app, StatusCode::OK).await;
    running.stop().await;
    stack.drop_database().await;
}
