use std::sync::Arc;

use chrono::Duration;
use domain::contracts::ReserveError;
use domain::{CategoryName, EventId, IdempotencyKey, Qty, ReservationStatus, StockCounts};
use reserve::{ReserveInput, ReserveRequest, reserve};
use testkit::{TestStack, user};

fn input(user_name: &str, event_id: EventId, category: &CategoryName, qty: i64) -> ReserveInput {
    ReserveInput {
        user: user(user_name),
        idempotency_key: None,
        admission: None,
        request: ReserveRequest {
            event_id,
            category: category.clone(),
            qty: Qty::new(qty).unwrap(),
        },
    }
}

fn keyed(mut input: ReserveInput, key: &str) -> ReserveInput {
    input.idempotency_key = Some(IdempotencyKey::parse(key).unwrap());
    input
}

async fn counts(stack: &TestStack, event_id: EventId) -> StockCounts {
    stack.counts(event_id).await
}

#[tokio::test]
async fn holds_tickets_until_the_deadline() {
    let stack = TestStack::new(600);
    let (event_id, floor) = stack.category(10, None).await;
    let ctx = &stack.embedded.context;

    let change = reserve(ctx, input("ann", event_id, &floor, 3))
        .await
        .unwrap();

    let held = change.reservation;
    assert!(change.changed);
    assert_eq!(held.status, ReservationStatus::Held);
    assert_eq!(held.expires_at - held.created_at, Duration::seconds(600));
    assert_eq!(
        counts(&stack, event_id).await,
        StockCounts {
            total: 10,
            available: 7,
            held: 3,
            sold: 0
        }
    );
}

#[tokio::test]
async fn refuses_more_than_is_left_and_changes_nothing() {
    let stack = TestStack::new(600);
    let (event_id, floor) = stack.category(4, None).await;
    let ctx = &stack.embedded.context;
    reserve(ctx, input("ann", event_id, &floor, 3))
        .await
        .unwrap();

    let refused = reserve(ctx, input("bob", event_id, &floor, 2)).await;

    assert!(matches!(refused, Err(ReserveError::SoldOut)));
    assert_eq!(
        counts(&stack, event_id).await,
        StockCounts {
            total: 4,
            available: 1,
            held: 3,
            sold: 0
        }
    );
}

#[tokio::test]
async fn an_unknown_category_is_refused() {
    let stack = TestStack::new(600);
    let (event_id, _) = stack.category(4, None).await;
    let other = CategoryName::parse("Balcony").unwrap();
    let refused = reserve(&stack.embedded.context, input("ann", event_id, &other, 1)).await;
    assert!(matches!(refused, Err(ReserveError::UnknownCategory)));
}

#[tokio::test]
async fn the_same_idempotency_key_never_holds_twice() {
    let stack = TestStack::new(600);
    let (event_id, floor) = stack.category(10, None).await;
    let ctx = &stack.embedded.context;

    let first = reserve(ctx, keyed(input("ann", event_id, &floor, 2), "k1"))
        .await
        .unwrap();
    let retry = reserve(ctx, keyed(input("ann", event_id, &floor, 2), "k1"))
        .await
        .unwrap();
    let changed_body = reserve(ctx, keyed(input("ann", event_id, &floor, 3), "k1")).await;
    let other_user = reserve(ctx, keyed(input("bob", event_id, &floor, 2), "k1"))
        .await
        .unwrap();

    assert_eq!(retry.reservation, first.reservation);
    assert!(first.changed && !retry.changed);
    assert!(matches!(
        changed_body,
        Err(ReserveError::IdempotencyKeyReused)
    ));
    assert_ne!(other_user.reservation.id, first.reservation.id);
    assert_eq!(counts(&stack, event_id).await.held, 4);
}

#[tokio::test]
async fn the_per_user_limit_counts_live_holds() {
    let stack = TestStack::new(600);
    let (event_id, floor) = stack.category(100, Some(4)).await;
    let ctx = &stack.embedded.context;

    reserve(ctx, input("ann", event_id, &floor, 3))
        .await
        .unwrap();
    let over = reserve(ctx, input("ann", event_id, &floor, 2)).await;
    reserve(ctx, input("ann", event_id, &floor, 1))
        .await
        .unwrap();
    reserve(ctx, input("bob", event_id, &floor, 4))
        .await
        .unwrap();

    assert!(matches!(over, Err(ReserveError::LimitExceeded { max: 4 })));
    assert_eq!(counts(&stack, event_id).await.held, 8);
}

/// 2,000 fans race for 500 tickets from two worker threads: exactly 500 holds, never more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_never_oversell() {
    let stack = Arc::new(TestStack::new(600));
    let (event_id, floor) = stack.category(500, None).await;

    let tasks: Vec<_> = (0..2000)
        .map(|fan| {
            let stack = stack.clone();
            let request = input(&format!("fan-{fan}"), event_id, &floor, 1);
            tokio::spawn(async move { reserve(&stack.embedded.context, request).await })
        })
        .collect();
    let mut held = 0;
    let mut sold_out = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => held += 1,
            Err(ReserveError::SoldOut) => sold_out += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    assert_eq!((held, sold_out), (500, 1500));
    assert_eq!(
        counts(&stack, event_id).await,
        StockCounts {
            total: 500,
            available: 0,
            held: 500,
            sold: 0
        }
    );
    stack.assert_stock_consistent().await;
}

#[tokio::test]
async fn behind_a_waiting_room_only_admitted_fans_reserve_and_nothing_moves_otherwise() {
    let stack = TestStack::new(600);
    let ctx = &stack.embedded.context;
    let (event_id, floor) = stack.category(10, None).await;
    let settings = serde_json::from_str(r#"{"enabled":true}"#).unwrap();
    ctx.waiting_room
        .configure(event_id, &settings)
        .await
        .unwrap();

    let refused = reserve(ctx, input("ann", event_id, &floor, 1)).await;
    assert!(matches!(refused, Err(ReserveError::NotAdmitted(_))));
    let mut forged = input("ann", event_id, &floor, 1);
    forged.admission = Some(format!("{}.{}", i64::MAX, "0".repeat(64)));
    assert!(matches!(
        reserve(ctx, forged).await,
        Err(ReserveError::NotAdmitted(_))
    ));
    assert_eq!(stack.counts(event_id).await.available, 10);

    let mut admitted = input("ann", event_id, &floor, 1);
    let until = stack.now() + Duration::seconds(60);
    admitted.admission = Some(ctx.admission_key.issue(event_id, &user("ann"), until));
    reserve(ctx, admitted).await.unwrap();
    assert_eq!(stack.counts(event_id).await.available, 9);
}
