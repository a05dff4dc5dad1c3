//! The access log: one line per request at info, with the route template (never the raw
//! path), status, latency and request id; a shed 503 at warn; nothing at error.
//!
//! A test binary of its own: it installs the process's subscriber. tracing caches each
//! callsite's interest for the whole process, so a subscriber set for one thread misses the
//! lines whose callsite another test's thread registered first.

#[allow(dead_code)] // the `api` tests use the rest
#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use helpers::{body, settings, spawn_app_with, stalled_reservation};

/// Where the test subscriber writes: every JSON line, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    /// The access lines logged so far, as JSON.
    fn access_lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| line["target"] == "access")
            .collect()
    }
}

#[tokio::test]
async fn one_access_line_per_request_with_route_template_and_request_id() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let app = spawn_app_with(ticketd::Settings {
        max_in_flight: 1,
        ..settings()
    })
    .await;
    let event_id = app.event_with_floor(1, None).await;
    let hold = app.hold("ann", &event_id, 1).await;

    let read = app
        .get(&format!("/reservations/{hold}"), Some(&app.user("ann")))
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let request_id = read.headers()["x-request-id"].to_str().unwrap().to_owned();
    let sold_out = app.reserve("bob", &event_id, 1).await;
    assert_eq!(sold_out.status(), StatusCode::CONFLICT);
    body(sold_out).await;

    // Four requests so far (event, category, hold, read) plus the 409: five lines.
    let lines = until_lines(&captured, 5).await;
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let read_line = lines
        .iter()
        .find(|line| line["span"]["request_id"] == request_id.as_str())
        .expect("the read's line carries its x-request-id");
    assert_eq!(read_line["level"], "INFO");
    assert_eq!(read_line["fields"]["method"], "GET");
    assert_eq!(read_line["fields"]["route"], "/reservations/{id}");
    assert_eq!(read_line["fields"]["status"], 200);
    assert!(read_line["fields"]["latency_ms"].as_f64().unwrap() >= 0.0);
    let all = serde_json::to_string(&lines).unwrap();
    assert!(
        !all.contains(&hold),
        "a raw path with its id reached the log"
    );
    let conflict = &lines[4]["fields"];
    assert_eq!(
        (conflict["status"].as_u64(), conflict["code"].as_str()),
        (Some(409), Some("sold_out"))
    );

    // Past the concurrency limit: the shed 503 is a warning, not an error.
    let _stalled = stalled_reservation(&app).await;
    let mut shed = None;
    for _ in 0..50 {
        let response = app.reserve("cid", &event_id, 1).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shed.expect("a request shed");
    let lines = app_lines_after(&captured, 5).await;
    let shed_line = lines
        .iter()
        .find(|line| line["fields"]["code"] == "overloaded")
        .expect("the shed request's line");
    assert_eq!(shed_line["level"], "WARN");
    assert!(
        captured
            .access_lines()
            .iter()
            .all(|line| line["level"] != "ERROR"),
        "no access line is an error here"
    );
}

/// Polls (up to 2 s) until at least `count` access lines are logged.
async fn until_lines(captured: &Captured, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let lines = captured.access_lines();
        if lines.len() >= count {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    captured.access_lines()
}

/// The access lines after the first `skip`, once there is at least one more.
async fn app_lines_after(captured: &Captured, skip: usize) -> Vec<Value> {
    until_lines(captured, skip + 1).await.split_off(skip)
}
