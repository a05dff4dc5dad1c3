use chrono::Duration;
use domain::{ReservationStatus, StockCounts};
use expire_holds::{BATCH, expire_holds};
use testkit::TestStack;

#[tokio::test]
async fn holds_expire_at_their_deadline_and_only_once() {
    let stack = TestStack::new(60);
    let (event_id, floor) = stack.category(10, Some(2)).await;
    let early = stack.hold(event_id, &floor, "ann", 2).await;
    stack.clock.advance(Duration::seconds(30));
    let late = stack.hold(event_id, &floor, "bob", 1).await;
    let ctx = &stack.embedded.context;

    stack.clock.advance(Duration::seconds(29));
    assert_eq!(expire_holds(ctx).await.unwrap(), 0);
    stack.clock.advance(Duration::seconds(1));
    assert_eq!(expire_holds(ctx).await.unwrap(), 1);
    assert_eq!(expire_holds(ctx).await.unwrap(), 0);

    let status = |id| async move { ctx.stock.reservation(id).await.unwrap().unwrap().status };
    assert_eq!(status(early.id).await, ReservationStatus::Expired);
    assert_eq!(status(late.id).await, ReservationStatus::Held);
    let counts = stack.counts(event_id).await;
    assert_eq!(
        counts,
        StockCounts {
            total: 10,
            available: 9,
            held: 1,
            sold: 0
        }
    );
    // The expired tickets count against ann's limit no more.
    stack.hold(event_id, &floor, "ann", 2).await;
}

#[tokio::test]
async fn more_holds_than_one_batch_all_expire() {
    let stack = TestStack::new(1);
    let (event_id, floor) = stack.category(10_000, None).await;
    for fan in 0..BATCH + 10 {
        stack.hold(event_id, &floor, &format!("fan-{fan}"), 1).await;
    }
    stack.clock.advance(Duration::seconds(1));

    assert_eq!(
        expire_holds(&stack.embedded.context).await.unwrap(),
        BATCH + 10
    );
    stack.assert_stock_consistent().await;
}
