use chrono::Duration;
use domain::contracts::{HoldRequest, Settlement};
use domain::{IdempotencyKey, Qty, ReservationEvent, ReservationStatus};
use forget_finished_holds::forget_finished_holds;
use testkit::{TestStack, user};

#[tokio::test]
async fn a_finished_hold_is_forgotten_once_stored_and_past_its_retention() {
    let stack = TestStack::new(600);
    let (event_id, floor) = stack.category(10, None).await;
    let ctx = &stack.embedded.context;
    let now = stack.now();
    let keyed = HoldRequest {
        event_id,
        category: floor.clone(),
        user: user("ann"),
        qty: Qty::new(2).unwrap(),
        idempotency_key: Some(IdempotencyKey::parse("order-1").unwrap()),
        rate_limit: None,
        now,
        expires_at: now + ctx.reservation_ttl,
    };
    let held = ctx.stock.reserve(keyed.clone()).await.unwrap().reservation;
    let live = stack.hold(event_id, &floor, "bob", 1).await;
    let confirmed = ctx
        .stock
        .settle(held.id, &user("ann"), Settlement::Confirm, now)
        .await
        .unwrap()
        .reservation;

    // Within its retention, and later while the reservation store lacks it: kept.
    stack
        .clock
        .advance(ctx.finished_hold_retention - Duration::seconds(1));
    ctx.reservations
        .apply(&[ReservationEvent::of(&confirmed)])
        .await
        .unwrap();
    assert_eq!(forget_finished_holds(ctx).await.unwrap(), 0);
    stack.clock.advance(Duration::seconds(1));
    let stored_elsewhere = stack.hold(event_id, &floor, "cyd", 1).await;
    ctx.reservations
        .apply(&[ReservationEvent::of(&stored_elsewhere)])
        .await
        .unwrap();
    assert_eq!(forget_finished_holds(ctx).await.unwrap(), 1);

    assert_eq!(ctx.stock.reservation(held.id).await.unwrap(), None);
    let stored = ctx.reservations.get(held.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ReservationStatus::Confirmed);
    // Live holds stay, stored or not; the stock is untouched.
    assert!(ctx.stock.reservation(live.id).await.unwrap().is_some());
    assert!(
        ctx.stock
            .reservation(stored_elsewhere.id)
            .await
            .unwrap()
            .is_some()
    );
    stack.assert_stock_consistent().await;
    // The key went with its hold: the same key now makes a new hold.
    let mut again = keyed;
    again.now = stack.now();
    again.expires_at = again.now + ctx.reservation_ttl;
    let replay = ctx.stock.reserve(again).await.unwrap();
    assert!(replay.changed);
    assert_ne!(replay.reservation.id, held.id);
    assert_eq!(forget_finished_holds(ctx).await.unwrap(), 0);
}
