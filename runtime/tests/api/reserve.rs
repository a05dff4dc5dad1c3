use reqwest::StatusCode;

use crate::helpers::{Attacks, body, error_code, spawn_app};

#[tokio::test]
async fn a_reservation_holds_tickets_until_its_deadline() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;

    let response = app.reserve("ann", &event_id, 3).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let held = body(response).await;
    assert_eq!(held["status"], "held");
    assert_eq!(held["qty"], 3);
    assert_eq!(held["user_id"], "ann");
    let created =
        chrono::DateTime::parse_from_rfc3339(held["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(held["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 600);
    assert_eq!(app.floor(&event_id).await, (10, 7, 3, 0));
}

#[tokio::test]
async fn not_enough_stock_is_sold_out_and_changes_nothing() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(4, None).await;
    app.hold("ann", &event_id, 3).await;

    let response = app.reserve("bob", &event_id, 2).await;

    assert_eq!(error_code(response, StatusCode::CONFLICT).await, "sold_out");
    assert_eq!(app.floor(&event_id).await, (4, 1, 3, 0));
}

/// Past a sell-out the process answers from its sold-out hint; a cancelled hold's tickets are
/// back on sale once the hint's short lifetime is over.
#[tokio::test]
async fn a_cancelled_hold_is_on_sale_again_soon_after_a_sell_out() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(2, None).await;
    let held = app.hold("ann", &event_id, 2).await;
    for fan in ["bob", "cat", "dan"] {
        let refused = app.reserve(fan, &event_id, 1).await;
        assert_eq!(error_code(refused, StatusCode::CONFLICT).await, "sold_out");
    }

    let cancelled = app.confirm("ann", &held, false).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled_at = std::time::Instant::now();
    let mut answer = app.reserve("bob", &event_id, 2).await;
    for _ in 0..100 {
        if answer.status() != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        answer = app.reserve("bob", &event_id, 2).await;
    }

    assert_eq!(
        answer.status(),
        StatusCode::CREATED,
        "{:?}",
        cancelled_at.elapsed()
    );
    assert_eq!(app.floor(&event_id).await, (2, 0, 2, 0));
}

#[tokio::test]
async fn an_unknown_category_is_not_found() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(4, None).await;
    let request = serde_json::json!({"event_id": event_id, "category": "Balcony", "qty": 1});

    let response = app.post("/reserve", Some(&app.user("ann")), &request).await;

    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "category_not_found"
    );
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_reservation() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;

    let first = body(app.reserve_with_key("ann", &event_id, 2, "order-1").await).await;
    let mut attacks = Attacks::on(&app, "idempotency: replayed and reused keys").await;
    for _ in 0..3 {
        let retry = app.reserve_with_key("ann", &event_id, 2, "order-1").await;
        let same = retry.status() == StatusCode::CREATED && body(retry).await == first;
        attacks.checked("replay: the same reservation again", same);
    }
    for qty in [1, 3, 10] {
        let changed = app.reserve_with_key("ann", &event_id, qty, "order-1").await;
        attacks
            .refused(
                &format!("reuse with qty {qty}"),
                changed,
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
            )
            .await;
    }
    attacks.report().await;

    // Another user's key of the same name is theirs alone.
    let other = body(app.reserve_with_key("bob", &event_id, 2, "order-1").await).await;
    assert_ne!(other["reservation_id"], first["reservation_id"]);
    assert_eq!(app.floor(&event_id).await, (10, 6, 4, 0));
}

#[tokio::test]
async fn the_per_user_limit_covers_holds_and_purchases() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(100, Some(4)).await;
    let bought = app.hold("ann", &event_id, 2).await;
    assert_eq!(
        app.confirm("ann", &bought, true).await.status(),
        StatusCode::OK
    );
    app.hold("ann", &event_id, 1).await;

    let over = app.reserve("ann", &event_id, 2).await;
    assert_eq!(
        error_code(over, StatusCode::CONFLICT).await,
        "limit_exceeded"
    );

    assert_eq!(
        app.reserve("ann", &event_id, 1).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.reserve("bob", &event_id, 4).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.floor(&event_id).await, (100, 92, 6, 2));
}
