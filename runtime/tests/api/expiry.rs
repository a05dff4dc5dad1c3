use std::time::Duration;

use domain::ReservationStatus;
use reqwest::StatusCode;

use crate::helpers::{body, error_code, settings, spawn_app_with};

#[tokio::test]
async fn an_unpaid_hold_expires_and_its_stock_returns_once() {
    let app = spawn_app_with(ticketd::Settings {
        reservation_ttl: 1,
        ..settings()
    })
    .await;
    let event_id = app.event_with_floor(10, None).await;
    let expiring = app.hold("ann", &event_id, 3).await;
    let paid = app.hold("bob", &event_id, 2).await;
    assert_eq!(
        app.confirm("bob", &paid, true).await.status(),
        StatusCode::OK
    );

    // The deadline is 1 s away and the sweeper runs every 250 ms: 3 s is plenty.
    let mut counts = app.floor(&event_id).await;
    for _ in 0..30 {
        if counts.2 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        counts = app.floor(&event_id).await;
    }
    assert_eq!(counts, (10, 8, 0, 2));

    let late = app.confirm("ann", &expiring, true).await;
    assert_eq!(error_code(late, StatusCode::GONE).await, "expired");
    let reservation = app
        .get(&format!("/reservations/{expiring}"), Some(&app.user("ann")))
        .await;
    assert_eq!(body(reservation).await["status"], "expired");
    // Later sweeps never release it again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.floor(&event_id).await, (10, 8, 0, 2));

    // Shutdown flushes the stream: the reservation store holds exactly the final states.
    let reservations = app.memory().reservations.clone();
    app.stop().await;
    let mut stored: Vec<_> = reservations
        .all()
        .into_iter()
        .map(|r| (r.user_id.to_string(), r.status))
        .collect();
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        stored,
        [
            ("ann".into(), ReservationStatus::Expired),
            ("bob".into(), ReservationStatus::Confirmed)
        ]
    );
}
