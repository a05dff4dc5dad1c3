//! The sold-out hint: once the store has refused a category, the herd that follows is answered
//! without asking it again, until the hint's lifetime is over.

use std::sync::Arc;

use chrono::Duration;
use domain::contracts::{ReservationChange, ReserveError, Settlement};
use domain::sold_out::SOLD_OUT_HINT_LIFETIME;
use domain::{CategoryName, Context, EventId, IdempotencyKey, Qty, Reservation};
use reserve::{ReserveInput, ReserveRequest, reserve};
use testkit::{TestStack, WatchedStock, user};

/// A test stack whose context reserves through a [`WatchedStock`], counting what reaches it.
struct Hinted {
    stack: TestStack,
    ctx: Context,
    store: Arc<WatchedStock>,
}

impl Hinted {
    fn new(ttl_secs: i64) -> Self {
        let stack = TestStack::new(ttl_secs);
        let store = Arc::new(WatchedStock::new(stack.embedded.context.stock.clone()));
        let ctx = Context {
            stock: store.clone(),
            ..stack.embedded.context.clone()
        };
        Self { stack, ctx, store }
    }

    fn store_calls(&self) -> usize {
        self.store.reserves()
    }

    async fn reserve(
        &self,
        user_name: &str,
        event_id: EventId,
        qty: i64,
        key: Option<&str>,
    ) -> Result<ReservationChange, ReserveError> {
        let input = ReserveInput {
            user: user(user_name),
            idempotency_key: key.map(|key| IdempotencyKey::parse(key).unwrap()),
            admission: None,
            request: ReserveRequest {
                event_id,
                category: CategoryName::parse("Floor").unwrap(),
                qty: Qty::new(qty).unwrap(),
            },
        };
        reserve(&self.ctx, input).await
    }

    async fn cancel(&self, held: &Reservation) {
        let now = self.stack.now();
        self.ctx
            .stock
            .settle(held.id, &held.user_id, Settlement::Cancel, now)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_sold_out_category_is_answered_without_the_store() {
    let hinted = Hinted::new(600);
    let (event_id, _) = hinted.stack.category(2, None).await;
    hinted.reserve("ann", event_id, 2, None).await.unwrap();
    let first = hinted.reserve("bob", event_id, 1, None).await;
    assert!(matches!(first, Err(ReserveError::SoldOut)));
    assert_eq!(hinted.store_calls(), 2);

    for fan in 0..100 {
        let refused = hinted
            .reserve(&format!("fan-{fan}"), event_id, 1, None)
            .await;
        assert!(matches!(refused, Err(ReserveError::SoldOut)), "{refused:?}");
    }

    assert_eq!(hinted.store_calls(), 2, "the herd reached the store");
    // Another event's category is not hinted.
    let (other, _) = hinted.stack.category(1, None).await;
    hinted.reserve("ann", other, 1, None).await.unwrap();
    assert_eq!(hinted.store_calls(), 3);
}

#[tokio::test]
async fn a_cancelled_hold_is_seen_once_the_hint_lifetime_is_over() {
    let hinted = Hinted::new(600);
    let (event_id, _) = hinted.stack.category(2, None).await;
    let held = hinted.reserve("ann", event_id, 2, None).await.unwrap();
    let refused = hinted.reserve("bob", event_id, 1, None).await;
    assert!(matches!(refused, Err(ReserveError::SoldOut)));

    hinted.cancel(&held.reservation).await;
    hinted.stack.clock.advance(Duration::milliseconds(100));
    let hinted_answer = hinted.reserve("bob", event_id, 1, None).await;
    assert!(matches!(hinted_answer, Err(ReserveError::SoldOut)));
    assert_eq!(hinted.store_calls(), 2);

    hinted
        .stack
        .clock
        .advance(SOLD_OUT_HINT_LIFETIME - Duration::milliseconds(100));
    let held = hinted.reserve("bob", event_id, 2, None).await.unwrap();

    assert!(held.changed);
    assert_eq!(hinted.store_calls(), 3);
    assert_eq!(hinted.stack.counts(event_id).await.held, 2);
}

#[tokio::test]
async fn an_expired_hold_is_seen_once_the_hint_lifetime_is_over() {
    let hinted = Hinted::new(1);
    let (event_id, _) = hinted.stack.category(1, None).await;
    hinted.reserve("ann", event_id, 1, None).await.unwrap();
    let clock = &hinted.stack.clock;
    clock.advance(Duration::milliseconds(900));
    let refused = hinted.reserve("bob", event_id, 1, None).await;
    assert!(matches!(refused, Err(ReserveError::SoldOut)));

    // The hold's deadline: the sweeper returns its ticket, the hint is 100 ms old.
    clock.advance(Duration::milliseconds(100));
    let expired = hinted.ctx.stock.expire_due(hinted.stack.now(), 10).await;
    assert_eq!(expired.unwrap(), 1);
    let hinted_answer = hinted.reserve("bob", event_id, 1, None).await;
    assert!(matches!(hinted_answer, Err(ReserveError::SoldOut)));

    clock.advance(SOLD_OUT_HINT_LIFETIME - Duration::milliseconds(100));
    hinted.reserve("bob", event_id, 1, None).await.unwrap();
    assert_eq!(hinted.store_calls(), 3);
}

#[tokio::test]
async fn a_retry_with_its_idempotency_key_still_gets_its_reservation() {
    let hinted = Hinted::new(600);
    let (event_id, _) = hinted.stack.category(2, None).await;
    let first = hinted
        .reserve("ann", event_id, 2, Some("ann-1"))
        .await
        .unwrap();
    let refused = hinted.reserve("bob", event_id, 1, None).await;
    assert!(matches!(refused, Err(ReserveError::SoldOut)));

    let retry = hinted
        .reserve("ann", event_id, 2, Some("ann-1"))
        .await
        .unwrap();
    let keyed_newcomer = hinted.reserve("cat", event_id, 1, Some("cat-1")).await;

    assert_eq!(retry.reservation, first.reservation);
    assert!(!retry.changed);
    assert!(matches!(keyed_newcomer, Err(ReserveError::SoldOut)));
    // Both keyed requests went to the store.
    assert_eq!(hinted.store_calls(), 4);
}

#[tokio::test]
async fn fewer_tickets_than_were_refused_still_ask_the_store() {
    let hinted = Hinted::new(600);
    let (event_id, _) = hinted.stack.category(5, None).await;
    hinted.reserve("ann", event_id, 3, None).await.unwrap();
    let four = hinted.reserve("bob", event_id, 4, None).await;
    assert!(matches!(four, Err(ReserveError::SoldOut)));

    let one = hinted.reserve("cat", event_id, 1, None).await;
    let four_again = hinted.reserve("dan", event_id, 4, None).await;
    let two = hinted.reserve("eve", event_id, 2, None).await;
    let last_one = hinted.reserve("fay", event_id, 1, None).await;
    let after = hinted.reserve("gus", event_id, 1, None).await;
    let none_left = hinted.reserve("hal", event_id, 1, None).await;

    assert!(one.is_ok(), "{one:?}");
    assert!(matches!(four_again, Err(ReserveError::SoldOut)));
    // One left: 2 is refused by the store, and 1 still gets through.
    assert!(matches!(two, Err(ReserveError::SoldOut)));
    assert!(last_one.is_ok(), "{last_one:?}");
    assert!(matches!(after, Err(ReserveError::SoldOut)));
    assert!(matches!(none_left, Err(ReserveError::SoldOut)));
    // ann, bob, cat, eve, fay, gus asked the store; dan (4 after 4) and hal (1 after 1) did not.
    assert_eq!(hinted.store_calls(), 6);
    assert_eq!(hinted.stack.counts(event_id).await.available, 0);
}

#[tokio::test]
async fn a_due_hint_is_checked_by_one_request_and_a_new_hold_ends_it() {
    let hinted = Hinted::new(600);
    let (event_id, _) = hinted.stack.category(3, None).await;
    let held = hinted.reserve("ann", event_id, 3, None).await.unwrap();
    let refused = hinted.reserve("bob", event_id, 1, None).await;
    assert!(matches!(refused, Err(ReserveError::SoldOut)));

    // Due: the first request asks the store again (still sold out), the herd does not.
    hinted.stack.clock.advance(SOLD_OUT_HINT_LIFETIME);
    for fan in 0..10 {
        let refused = hinted
            .reserve(&format!("fan-{fan}"), event_id, 1, None)
            .await;
        assert!(matches!(refused, Err(ReserveError::SoldOut)), "{refused:?}");
    }
    assert_eq!(hinted.store_calls(), 3);

    // Tickets come back. Once the hint is due, the one who asks holds one and the hint ends,
    // so the next fans ask the store too and get the rest.
    hinted.cancel(&held.reservation).await;
    hinted.stack.clock.advance(SOLD_OUT_HINT_LIFETIME);
    for fan in ["cat", "dan", "eve"] {
        hinted.reserve(fan, event_id, 1, None).await.unwrap();
    }
    let after = hinted.reserve("fay", event_id, 1, None).await;

    assert!(matches!(after, Err(ReserveError::SoldOut)));
    assert_eq!(hinted.store_calls(), 7);
}
