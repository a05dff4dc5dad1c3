use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{body, error_code, spawn_app};

#[tokio::test]
async fn an_admin_creates_an_event_and_its_categories() {
    let app = spawn_app().await;
    let admin = app.admin();

    let event =
        json!({"name": "Night Show", "date": "2030-06-01T22:00:00+02:00", "venue": "Arena"});
    let response = app.post("/events", Some(&admin), &event).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let event = body(response).await;
    let event_id = event["id"].as_str().unwrap();
    assert!(uuid::Uuid::try_parse(event_id).is_ok());
    assert_eq!(event["date"], "2030-06-01T20:00:00Z");
    assert_eq!(event["venue"], "Arena");

    let path = format!("/events/{event_id}/ticket-category");
    let floor = json!({"name": "Floor", "total_stock": 500, "price": 49.99, "max_per_user": 4});
    let response = app.post(&path, Some(&admin), &floor).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body(response).await["max_per_user"], 4);
    let balcony = json!({"name": "Balcony", "total_stock": 100, "price": 25});
    assert_eq!(
        app.post(&path, Some(&admin), &balcony).await.status(),
        StatusCode::CREATED
    );

    let response = app
        .get(&format!("/events/{event_id}/availability"), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body(response).await,
        json!({"event_id": event_id, "categories": [
            {"name": "Floor", "price": 49.99, "total": 500, "available": 500, "held": 0, "sold": 0},
            {"name": "Balcony", "price": 25.0, "total": 100, "available": 100, "held": 0, "sold": 0},
        ]})
    );
}

#[tokio::test]
async fn a_duplicate_category_is_a_conflict_and_changes_nothing() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;

    let again = json!({"name": "Floor", "total_stock": 99, "price": 1});
    let path = format!("/events/{event_id}/ticket-category");
    let response = app.post(&path, Some(&app.admin()), &again).await;

    assert_eq!(
        error_code(response, StatusCode::CONFLICT).await,
        "duplicate_category"
    );
    assert_eq!(app.floor(&event_id).await, (10, 10, 0, 0));
}

#[tokio::test]
async fn unknown_events_are_not_found() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::now_v7();
    let category = json!({"name": "Floor", "total_stock": 1, "price": 1});

    let add = app
        .post(
            &format!("/events/{unknown}/ticket-category"),
            Some(&app.admin()),
            &category,
        )
        .await;
    let availability = app
        .get(&format!("/events/{unknown}/availability"), None)
        .await;

    assert_eq!(
        error_code(add, StatusCode::NOT_FOUND).await,
        "event_not_found"
    );
    assert_eq!(
        error_code(availability, StatusCode::NOT_FOUND).await,
        "event_not_found"
    );
}
