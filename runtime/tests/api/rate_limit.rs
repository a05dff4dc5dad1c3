use reqwest::StatusCode;

use crate::helpers::{Attacks, settings, spawn_app_with};

#[tokio::test]
async fn a_user_reserving_too_fast_gets_429_and_others_do_not() {
    let app = spawn_app_with(ticketd::Settings {
        reserve_rate_per_minute: 60,
        reserve_burst: 2,
        ..settings()
    })
    .await;
    let event_id = app.event_with_floor(10, None).await;
    app.hold("ann", &event_id, 1).await;
    app.hold("ann", &event_id, 1).await;

    let mut attacks = Attacks::on(&app, "rate limit: one user reserving too fast").await;
    for _ in 0..20 {
        let limited = app.reserve("ann", &event_id, 1).await;
        attacks
            .refused_for_now(
                "over the burst",
                limited,
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
            )
            .await;
    }
    attacks.report().await;
    app.hold("bob", &event_id, 1).await;
    assert_eq!(app.floor(&event_id).await, (10, 7, 3, 0));
}
