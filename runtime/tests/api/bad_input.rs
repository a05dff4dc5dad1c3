use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Attacks, TestApp, spawn_app};

async fn post_raw(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_reservations_get_a_clear_400_and_change_nothing() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    let user = app.user("ann");
    let cases = [
        ("{\"event_id\":", "malformed_json"),
        ("[1,2,3]", "invalid_field"),
        ("{}", "invalid_field"),
        (
            &*json!({"event_id": event_id, "category": "Floor", "qty": 0}).to_string(),
            "invalid_field",
        ),
        (
            &json!({"event_id": event_id, "category": "Floor", "qty": -1}).to_string(),
            "invalid_field",
        ),
        (
            &json!({"event_id": event_id, "category": "Floor", "qty": 11}).to_string(),
            "invalid_field",
        ),
        (
            &json!({"event_id": event_id, "category": "Floor", "qty": 1.5}).to_string(),
            "invalid_field",
        ),
        (
            &json!({"event_id": event_id, "category": "Floor", "qty": "1"}).to_string(),
            "invalid_field",
        ),
        (
            &format!(
                r#"{{"event_id":"{event_id}","category":"Floor","qty":99999999999999999999}}"#
            ),
            "invalid_field",
        ),
        (
            &json!({"event_id": "not-a-uuid", "category": "Floor", "qty": 1}).to_string(),
            "invalid_field",
        ),
        (
            &json!({"event_id": event_id, "category": "", "qty": 1}).to_string(),
            "invalid_field",
        ),
        (
            &json!({"event_id": event_id, "category": "Floor", "qty": 1, "price": 0}).to_string(),
            "invalid_field",
        ),
        (
            &format!(r#"{{"event_id":"{event_id}","category":"Floor","qty":1,"qty":2}}"#),
            "invalid_field",
        ),
        (
            &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
            "invalid_field",
        ),
    ];
    let mut attacks = Attacks::on(&app, "bodies: reservations").await;
    for (body, code) in cases {
        let response = post_raw(&app, "/reserve", &user, "application/json", body.to_owned()).await;
        attacks
            .refused(body, response, StatusCode::BAD_REQUEST, code)
            .await;
    }
    let bad_key = app
        .client
        .post(app.url("/reserve"))
        .bearer_auth(&user)
        .header("idempotency-key", "has spaces")
        .json(&json!({"event_id": event_id, "category": "Floor", "qty": 1}))
        .send()
        .await
        .unwrap();
    attacks
        .refused(
            "idempotency key with spaces",
            bad_key,
            StatusCode::BAD_REQUEST,
            "invalid_field",
        )
        .await;
    attacks.report().await;
}

#[tokio::test]
async fn bad_catalogue_input_gets_a_clear_400() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    let admin = app.admin();
    let mut attacks = Attacks::on(&app, "bodies: events, categories and path ids").await;
    let events = [
        json!({"name": "", "date": "2030-01-01T00:00:00Z"}),
        json!({"name": "x", "date": "2030-01-01"}),
        json!({"name": "x", "date": "01/02/2030 20:00"}),
        json!({"name": "x", "date": "2030-01-01T00:00:00Z", "organiser": "me"}),
    ];
    for event in events {
        let response = app.post("/events", Some(&admin), &event).await;
        attacks
            .refused(
                &event.to_string(),
                response,
                StatusCode::BAD_REQUEST,
                "invalid_field",
            )
            .await;
    }
    let path = format!("/events/{event_id}/ticket-category");
    let categories = [
        json!({"name": "A", "total_stock": -1, "price": 1}),
        json!({"name": "A", "total_stock": 1, "price": -1}),
        json!({"name": "A", "total_stock": 1, "price": 0.001}),
        json!({"name": "A", "total_stock": 100_000_000, "price": 1}),
        json!({"name": " ", "total_stock": 1, "price": 1}),
        json!({"name": "A", "total_stock": 1, "price": 1, "max_per_user": 0}),
    ];
    for category in categories {
        let response = app.post(&path, Some(&admin), &category).await;
        attacks
            .refused(
                &category.to_string(),
                response,
                StatusCode::BAD_REQUEST,
                "invalid_field",
            )
            .await;
    }
    let bad_path = app
        .post(
            "/events/not-a-uuid/ticket-category",
            Some(&admin),
            &categories_ok(),
        )
        .await;
    let bad_paths = [
        ("category of event not-a-uuid", bad_path),
        (
            "availability of event not-a-uuid",
            app.get("/events/not-a-uuid/availability", None).await,
        ),
        (
            "reservation 42",
            app.get("/reservations/42", Some(&app.user("ann"))).await,
        ),
    ];
    for (case, response) in bad_paths {
        attacks
            .refused(case, response, StatusCode::BAD_REQUEST, "invalid_field")
            .await;
    }
    attacks.report().await;
}

fn categories_ok() -> serde_json::Value {
    json!({"name": "A", "total_stock": 1, "price": 1})
}

#[tokio::test]
async fn wrong_content_types_and_huge_bodies_are_refused() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    let user = app.user("ann");
    let body = json!({"event_id": event_id, "category": "Floor", "qty": 1}).to_string();

    let mut attacks = Attacks::on(&app, "bodies: content types and sizes").await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        let response = post_raw(&app, "/reserve", &user, content_type, body.clone()).await;
        attacks
            .refused(
                content_type,
                response,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
            .await;
    }
    let huge = format!(
        "{{\"event_id\":\"{event_id}\",\"category\":\"{}\",\"qty\":1}}",
        "x".repeat(1 << 20)
    );
    let huge = post_raw(&app, "/reserve", &user, "application/json", huge).await;
    attacks
        .refused(
            "1 MB body",
            huge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        )
        .await;
    // Without Content-Length (chunked), the limit still holds while reading.
    let chunks =
        futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 16 * 1024])));
    let streamed = post_raw(
        &app,
        "/reserve",
        &user,
        "application/json",
        reqwest::Body::wrap_stream(chunks),
    )
    .await;
    attacks
        .refused(
            "1 MB chunked body",
            streamed,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        )
        .await;
    attacks.report().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;

    let mut attacks = Attacks::on(&app, "routes: unknown paths and methods").await;
    for path in [
        "/tickets",
        "/metrics/x",
        "/reserve/1",
        "/../etc/passwd",
        "/events//availability",
    ] {
        let response = app.get(path, None).await;
        attacks
            .refused(path, response, StatusCode::NOT_FOUND, "not_found")
            .await;
    }
    let wrong_method = app.client.delete(app.url("/reserve")).send().await.unwrap();
    assert_eq!(wrong_method.headers()["allow"], "POST");
    attacks
        .refused(
            "DELETE /reserve",
            wrong_method,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
    attacks.report().await;
}

/// Sends a 2 MB reservation as a client on a real network does, a piece at a time, and
/// reads the answer only once it has sent it all; returns the answer, or why there is none.
async fn send_whole_then_read(app: &TestApp, user: &str, event_id: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(app.addr)
        .await
        .map_err(|err| err.to_string())?;
    let json = format!(r#"{{"event_id":"{event_id}","category":"Floor","qty":1}}"#);
    let body = json.clone() + &" ".repeat(2 * 1024 * 1024 - json.len());
    let head = format!(
        "POST /reserve HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        app.user(user),
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|err| err.to_string())?;
    for piece in body.as_bytes().chunks(64 * 1024) {
        stream
            .write_all(piece)
            .await
            .map_err(|err| format!("sending: {err}"))?;
        // The pace of a client far away: the server sees the headers long before the end.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .map_err(|_| "no answer in 10 s".to_owned())?
        .map_err(|err| format!("reading: {err}"))?;
    Ok(String::from_utf8_lossy(&answer[..read]).into_owned())
}

/// A refused body still gets its answer: the server reads and drops the rest (within a bound)
/// instead of closing on a client that is still sending.
#[tokio::test]
async fn an_oversized_body_is_answered_413_every_time() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(1, None).await;
    let mut answered_413 = 0;
    let mut failures = Vec::new();
    for _ in 0..20 {
        match send_whole_then_read(&app, "ann", &event_id).await {
            Ok(answer) if answer.starts_with("HTTP/1.1 413") => {
                assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
                answered_413 += 1;
            }
            Ok(answer) => failures.push(answer),
            Err(err) => failures.push(err),
        }
    }
    assert_eq!(answered_413, 20, "{failures:?}");
    // Nothing was held by the refused requests.
    assert_eq!(app.floor(&event_id).await, (1, 1, 0, 0));
}
