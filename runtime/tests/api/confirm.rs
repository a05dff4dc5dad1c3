use reqwest::StatusCode;

use crate::helpers::{Attacks, body, error_code, spawn_app};

#[tokio::test]
async fn paying_turns_the_hold_into_a_sale_once() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    let id = app.hold("ann", &event_id, 2).await;

    let first = app.confirm("ann", &id, true).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = body(first).await;
    assert_eq!(first["status"], "confirmed");

    let repeat = app.confirm("ann", &id, true).await;
    assert_eq!(repeat.status(), StatusCode::OK);
    assert_eq!(body(repeat).await, first);
    assert_eq!(app.floor(&event_id).await, (10, 8, 0, 2));

    let cancel_after = app.confirm("ann", &id, false).await;
    assert_eq!(
        error_code(cancel_after, StatusCode::CONFLICT).await,
        "already_final"
    );
    assert_eq!(app.floor(&event_id).await, (10, 8, 0, 2));
}

#[tokio::test]
async fn a_failed_payment_releases_the_stock_once() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    let id = app.hold("ann", &event_id, 2).await;

    let cancelled = app.confirm("ann", &id, false).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(body(cancelled).await["status"], "cancelled");
    assert_eq!(
        app.confirm("ann", &id, false).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.floor(&event_id).await, (10, 10, 0, 0));

    let pay_after = app.confirm("ann", &id, true).await;
    assert_eq!(
        error_code(pay_after, StatusCode::CONFLICT).await,
        "already_final"
    );
}

#[tokio::test]
async fn only_the_owner_may_confirm_or_read_a_reservation() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    let id = app.hold("ann", &event_id, 1).await;
    let path = format!("/reservations/{id}");

    let mut attacks = Attacks::on(&app, "tokens: another user's reservation").await;
    let cases = [
        ("bob pays", app.confirm("bob", &id, true).await),
        ("bob cancels", app.confirm("bob", &id, false).await),
        ("bob reads", app.get(&path, Some(&app.user("bob"))).await),
    ];
    for (case, response) in cases {
        attacks
            .refused(
                case,
                response,
                StatusCode::NOT_FOUND,
                "reservation_not_found",
            )
            .await;
    }
    attacks.report().await;

    let own = app.get(&path, Some(&app.user("ann"))).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(body(own).await["status"], "held");
    let admin = app.get(&path, Some(&app.admin())).await;
    assert_eq!(admin.status(), StatusCode::OK);
    assert_eq!(app.floor(&event_id).await, (10, 9, 1, 0));
}
