use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use ticketd::FunctionName;
use ticketd::config::Environment;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    Attacks, SECRET, body, error_code, settings, spawn_app, spawn_app_with, stalled_reservation,
};

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(1, None).await;
    app.hold("ann", &event_id, 1).await;
    app.reserve("bob", &event_id, 1).await;

    let health = app.get("/health", None).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(body(health).await["status"], "ok");

    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    // The ticket gauges are refreshed every 2 s.
    let held = format!(r#"tickets{{category="Floor",event="{event_id}",state="held"}} 1"#);
    let mut text = String::new();
    for _ in 0..30 {
        text = app.get("/metrics", None).await.text().await.unwrap();
        if text.contains(&held) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains(&held), "no {held}");
    assert!(text.contains("stock_invariant_broken 0"));
    for expected in [
        r#"http_requests_total{function="reserve",method="POST",status="201"}"#,
        r#"http_requests_total{function="reserve",method="POST",status="409"}"#,
        r#"failed_reservation_total{reason="sold_out"}"#,
        "reservation_total ",
        r#"http_request_duration_seconds_bucket{function="reserve","#,
    ] {
        assert!(text.contains(expected), "missing {expected}");
    }
}

#[tokio::test]
async fn a_process_serves_only_the_functions_it_mounts() {
    let app = spawn_app_with(ticketd::Settings {
        functions: Some(vec![FunctionName::Reserve, FunctionName::Confirm]),
        ..settings()
    })
    .await;

    let event = json!({"name": "x", "date": "2030-01-01T00:00:00Z"});
    let events = app.post("/events", Some(&app.admin()), &event).await;
    assert_eq!(error_code(events, StatusCode::NOT_FOUND).await, "not_found");
    assert_eq!(app.get("/health", None).await.status(), StatusCode::OK);
    let reserve = app.post("/reserve", None, &json!({})).await;
    assert_eq!(
        error_code(reserve, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
}

/// Sends one request on `stream` and reads its answer: the server has taken the connection.
async fn served(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(stream).await.starts_with("HTTP/1.1 200"));
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut response = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&response[..read]).into_owned()
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_are_shed_with_retry_after() {
    let app = spawn_app_with(ticketd::Settings {
        max_in_flight: 1,
        ..settings()
    })
    .await;
    let event_id = app.event_with_floor(5, None).await;
    let _stalled = stalled_reservation(&app).await;

    let mut attacks = Attacks::on(&app, "greedy clients: past the concurrency limit").await;
    for _ in 0..10 {
        let shed = app.reserve("ann", &event_id, 1).await;
        attacks
            .refused_for_now(
                "one request too many",
                shed,
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
            )
            .await;
    }
    attacks.report().await;
}

#[tokio::test]
async fn a_request_over_the_timeout_gets_503() {
    let app = spawn_app_with(ticketd::Settings {
        request_timeout: Duration::from_millis(300),
        ..settings()
    })
    .await;
    let mut stalled = stalled_reservation(&app).await;

    let response = read_response(&mut stalled).await;

    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains(r#""code":"timeout""#), "{response}");
    // docs/api.md: every 503 says when to retry.
    assert!(response.contains("\r\nretry-after: 1\r\n"), "{response}");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_is_not_ready() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(5, None).await;
    let ready = app.get("/ready", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(body(ready).await["status"], "ready");
    let mut in_flight = stalled_reservation(&app).await;
    let url = app.url("/ready");
    let reservations = app.memory().reservations.clone();

    let stopping = tokio::spawn(app.stop());
    // While the in-flight request drains, a new connection hears "not ready", not a refusal.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut not_ready = None;
    for _ in 0..100 {
        let response = fresh.get(&url).send().await.expect("served while draining");
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            not_ready = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let not_ready = not_ready.expect("/ready turns 503 once shutdown began");
    assert_eq!(not_ready.headers()["retry-after"], "5");
    assert_eq!(
        error_code(not_ready, StatusCode::SERVICE_UNAVAILABLE).await,
        "shutting_down"
    );
    let body = format!(r#"{{"event_id":"{event_id}","category":"Floor","qty":1}}"#);
    in_flight
        .write_all(format!("{body:<100}").as_bytes())
        .await
        .unwrap();

    let response = read_response(&mut in_flight).await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    stopping.await.unwrap();
    // The hold made during shutdown was flushed to the reservation store.
    assert_eq!(reservations.all().len(), 1);
}

#[tokio::test]
async fn production_refuses_a_weak_or_missing_secret() {
    let production = |secret: Option<&str>| ticketd::Settings {
        environment: Environment::Production,
        jwt_secret: secret.map(Into::into),
        ..settings()
    };
    for weak in [
        None,
        Some("dev-secret"),
        Some("31-bytes-is-one-byte-too-short!"),
    ] {
        let refused = ticketd::spawn(production(weak)).await.err();
        assert!(
            refused.is_some_and(|err| err.contains("JWT_SECRET")),
            "{weak:?} accepted"
        );
    }
    let strong = ticketd::spawn(production(Some(SECRET)))
        .await
        .expect("a 32-byte secret starts");
    strong.stop().await;
}

#[tokio::test]
async fn half_a_real_stack_is_refused_by_name() {
    let mut half = settings();
    half.stack.redis_url = Some("redis://127.0.0.1:6379".into());
    let refused = ticketd::spawn(half).await.err().expect("refused");
    assert!(
        refused.contains("DATABASE_URL") && refused.contains("KAFKA_BROKERS"),
        "{refused}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_one_to_close() {
    let app = spawn_app_with(ticketd::Settings {
        max_connections: 2,
        ..settings()
    })
    .await;
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    served(&mut first).await;
    served(&mut second).await;

    // The kernel completes the handshake, but ticketd does not take the connection yet.
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buffer)).await;
    assert!(early.is_err(), "answered past the cap");

    drop(first);
    let response = read_response(&mut third).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Reads until the server closes the connection; what it sent before closing.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "still open after 3 s");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let app = spawn_app_with(ticketd::Settings {
        header_timeout: Duration::from_millis(300),
        ..settings()
    })
    .await;

    let mut attacks = Attacks::on(&app, "slow clients: endless headers, idle keep-alive").await;
    // Slowloris: headers that never end, from several connections at once.
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"POST /reserve HTTP/1.1\r\nhost: localhost\r\nx-slow: 1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    for stream in &mut slow {
        let answered = until_closed(stream).await;
        attacks.checked("endless headers closed", !answered.contains("201"));
    }

    // Keep-alive: one request answered, then nothing more for longer than the timeout.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answered = until_closed(&mut idle).await;
    attacks.checked(
        "idle keep-alive closed",
        answered.starts_with("HTTP/1.1 200"),
    );
    attacks.report().await;
}
