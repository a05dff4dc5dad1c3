//! A hinted `sold_out` counts in `failed_reservation_total` like one from the store. Alone in
//! its test binary, so that no other test moves the process-wide counter under it.

use domain::contracts::ReserveError;
use domain::{CategoryName, EventId, Qty};
use reserve::{ReserveInput, ReserveRequest, reserve};
use telemetry::FAILED_RESERVATIONS;
use testkit::{TestStack, user};

fn one_ticket(event_id: EventId) -> ReserveInput {
    ReserveInput {
        user: user("fan"),
        idempotency_key: None,
        admission: None,
        request: ReserveRequest {
            event_id,
            category: CategoryName::parse("Floor").unwrap(),
            qty: Qty::new(1).unwrap(),
        },
    }
}

#[tokio::test]
async fn every_sold_out_answer_is_counted_once() {
    let stack = TestStack::new(600);
    let (event_id, _) = stack.category(0, None).await;
    let sold_out = FAILED_RESERVATIONS.with_label_values(&["sold_out"]);
    let before = sold_out.get();

    // The first asks the store, the other nine get the hint.
    for _ in 0..10 {
        let refused = reserve(&stack.embedded.context, one_ticket(event_id)).await;
        assert!(matches!(refused, Err(ReserveError::SoldOut)), "{refused:?}");
    }

    assert_eq!(sold_out.get() - before, 10);
    assert!(stack.embedded.context.sold_out_hints.is_sold_out(
        event_id,
        &CategoryName::parse("Floor").unwrap(),
        Qty::new(1).unwrap(),
        stack.now()
    ));
}
