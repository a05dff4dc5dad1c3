use chrono::Duration;
use confirm::{ConfirmInput, ConfirmRequest, confirm};
use domain::contracts::SettleError;
use domain::{ReservationEvent, ReservationId, ReservationStatus, StockCounts};
use testkit::{TestStack, user};

fn input(user_name: &str, reservation_id: ReservationId, payment_ok: bool) -> ConfirmInput {
    ConfirmInput {
        user: user(user_name),
        request: ConfirmRequest {
            reservation_id,
            payment_ok,
        },
    }
}

async fn setup() -> (TestStack, domain::EventId, ReservationId) {
    let stack = TestStack::new(60);
    let (event_id, floor) = stack.category(10, None).await;
    let held = stack.hold(event_id, &floor, "ann", 2).await;
    (stack, event_id, held.id)
}

async fn counts(stack: &TestStack, event_id: domain::EventId) -> StockCounts {
    stack.counts(event_id).await
}

#[tokio::test]
async fn a_paid_hold_becomes_a_sale_once() {
    let (stack, event_id, id) = setup().await;
    let ctx = &stack.embedded.context;

    let first = confirm(ctx, input("ann", id, true)).await.unwrap();
    let repeat = confirm(ctx, input("ann", id, true)).await.unwrap();

    assert_eq!(first.reservation.status, ReservationStatus::Confirmed);
    assert!(first.changed && !repeat.changed);
    assert_eq!(repeat.reservation, first.reservation);
    assert_eq!(
        counts(&stack, event_id).await,
        StockCounts {
            total: 10,
            available: 8,
            held: 0,
            sold: 2
        }
    );
}

#[tokio::test]
async fn an_unpaid_hold_returns_its_stock_once() {
    let (stack, event_id, id) = setup().await;
    let ctx = &stack.embedded.context;

    let cancelled = confirm(ctx, input("ann", id, false)).await.unwrap();
    confirm(ctx, input("ann", id, false)).await.unwrap();

    assert_eq!(cancelled.reservation.status, ReservationStatus::Cancelled);
    assert_eq!(counts(&stack, event_id).await, StockCounts::new(10));
}

#[tokio::test]
async fn a_final_state_does_not_change() {
    let (stack, event_id, id) = setup().await;
    let ctx = &stack.embedded.context;
    confirm(ctx, input("ann", id, true)).await.unwrap();

    let refused = confirm(ctx, input("ann", id, false)).await;

    assert!(matches!(
        refused,
        Err(SettleError::AlreadyFinal(ReservationStatus::Confirmed))
    ));
    assert_eq!(counts(&stack, event_id).await.sold, 2);
}

#[tokio::test]
async fn only_the_owner_may_act() {
    let (stack, event_id, id) = setup().await;
    let ctx = &stack.embedded.context;

    let stranger = confirm(ctx, input("bob", id, true)).await;
    let unknown = confirm(ctx, input("ann", ReservationId::generate(), true)).await;

    assert!(matches!(stranger, Err(SettleError::NotFound)));
    assert!(matches!(unknown, Err(SettleError::NotFound)));
    assert_eq!(counts(&stack, event_id).await.held, 2);
}

#[tokio::test]
async fn a_hold_past_its_deadline_cannot_be_confirmed() {
    let (stack, event_id, id) = setup().await;
    let ctx = &stack.embedded.context;
    stack.clock.advance(Duration::seconds(60));

    let late = confirm(ctx, input("ann", id, true)).await;

    assert!(matches!(late, Err(SettleError::Expired)));
    assert_eq!(counts(&stack, event_id).await.sold, 0);
}

#[tokio::test]
async fn a_repeat_gets_the_same_answer_once_the_stock_store_forgot_the_hold() {
    let (stack, _, id) = setup().await;
    let ctx = &stack.embedded.context;
    let first = confirm(ctx, input("ann", id, true)).await.unwrap();
    ctx.reservations
        .apply(&[ReservationEvent::of(&first.reservation)])
        .await
        .unwrap();
    assert_eq!(ctx.stock.forget_holds(&[id]).await.unwrap(), 1);
    assert_eq!(ctx.stock.reservation(id).await.unwrap(), None);

    let repeat = confirm(ctx, input("ann", id, true)).await.unwrap();
    assert_eq!(
        (repeat.changed, repeat.reservation),
        (false, first.reservation)
    );
    let cancel = confirm(ctx, input("ann", id, false)).await;
    assert!(matches!(
        cancel,
        Err(SettleError::AlreadyFinal(ReservationStatus::Confirmed))
    ));
    let stranger = confirm(ctx, input("bob", id, true)).await;
    assert!(matches!(stranger, Err(SettleError::NotFound)));
}
