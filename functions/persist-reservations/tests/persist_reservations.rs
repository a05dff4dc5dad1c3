use domain::{ReservationEvent, ReservationStatus};
use persist_reservations::persist_reservations;
use testkit::TestStack;

#[tokio::test]
async fn redelivery_never_moves_a_reservation_back() {
    let stack = TestStack::new(60);
    let (event_id, floor) = stack.category(10, None).await;
    let held = stack.hold(event_id, &floor, "ann", 1).await;
    let mut confirmed = held.clone();
    confirmed.status = ReservationStatus::Confirmed;
    let (held, confirmed) = (
        ReservationEvent::of(&held),
        ReservationEvent::of(&confirmed),
    );
    let ctx = &stack.embedded.context;

    persist_reservations(ctx, &[held.clone(), confirmed.clone()])
        .await
        .unwrap();
    persist_reservations(ctx, &[held.clone(), confirmed.clone(), held.clone()])
        .await
        .unwrap();

    let stored = stack.embedded.reservations.all();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], confirmed.reservation);
}

#[tokio::test]
async fn a_final_state_seen_first_is_kept() {
    let stack = TestStack::new(60);
    let (event_id, floor) = stack.category(10, None).await;
    let held = stack.hold(event_id, &floor, "ann", 1).await;
    let mut expired = held.clone();
    expired.status = ReservationStatus::Expired;

    let ctx = &stack.embedded.context;
    persist_reservations(
        ctx,
        &[ReservationEvent::of(&expired), ReservationEvent::of(&held)],
    )
    .await
    .unwrap();

    assert_eq!(
        stack.embedded.reservations.all()[0].status,
        ReservationStatus::Expired
    );
}
