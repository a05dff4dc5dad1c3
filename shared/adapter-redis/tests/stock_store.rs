//! The `StockStore` contract, run against the memory adapter and a real Redis: database 9 of the
//! server at `REDIS_URL` (default redis://127.0.0.1:6379, which `infra/local-stack.sh` starts),
//! emptied before the first test, so a developer's own stack in database 0 never sees test
//! data. Every test makes its own event, and all times come from the real clock, because the
//! tests share the database and each other's sweepers expire whatever is due.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::contracts::{
    HoldRequest, RateLimit, ReserveError, SettleError, Settlement, StockStore,
};
use domain::{Category, CategoryName, EventId, ReservationId, ReservationStatus, StockCounts};

mod common;

use common::*;

async fn a_hold_moves_stock_and_is_found_by_id(store: Arc<dyn StockStore>) {
    let category = category(&*store, 10, None).await;
    let change = store
        .reserve(hold(&category, "ann", 3, TEN_MINUTES))
        .await
        .unwrap();
    assert!(change.changed);
    assert_eq!(change.reservation.status, ReservationStatus::Held);
    assert_eq!(
        counts(&*store, &category).await,
        StockCounts {
            total: 10,
            available: 7,
            held: 3,
            sold: 0
        }
    );
    let gauged = sale(&*store, &category).await;
    assert_eq!(
        (gauged.counts, gauged.live_holds),
        (
            Some(StockCounts {
                total: 10,
                available: 7,
                held: 3,
                sold: 0
            }),
            1
        )
    );
    let found = store.reservation(change.reservation.id).await.unwrap();
    assert_eq!(found, Some(change.reservation));
    assert_eq!(
        store.reservation(ReservationId::generate()).await.unwrap(),
        None
    );
}

async fn refusals_change_nothing(store: Arc<dyn StockStore>) {
    let category = category(&*store, 4, None).await;
    held(&*store, &category, "ann", 3).await;
    let sold_out = store.reserve(hold(&category, "bob", 2, TEN_MINUTES)).await;
    assert!(matches!(sold_out, Err(ReserveError::SoldOut)));
    let mut unknown = hold(&category, "bob", 1, TEN_MINUTES);
    unknown.category = CategoryName::parse("Balcony").unwrap();
    assert!(matches!(
        store.reserve(unknown).await,
        Err(ReserveError::UnknownCategory)
    ));
    assert_eq!(
        counts(&*store, &category).await,
        StockCounts {
            total: 4,
            available: 1,
            held: 3,
            sold: 0
        }
    );
}

async fn an_event_without_categories_has_no_counts(store: Arc<dyn StockStore>) {
    let counts = store.counts(EventId::generate(), &[floor()]).await.unwrap();
    assert_eq!(counts, []);
}

async fn an_idempotency_key_holds_once(store: Arc<dyn StockStore>) {
    let category = category(&*store, 10, None).await;
    let first = store
        .reserve(keyed(hold(&category, "ann", 2, TEN_MINUTES), "k1"))
        .await
        .unwrap();
    let retry = store
        .reserve(keyed(hold(&category, "ann", 2, TEN_MINUTES), "k1"))
        .await
        .unwrap();
    let other_qty = store
        .reserve(keyed(hold(&category, "ann", 3, TEN_MINUTES), "k1"))
        .await;
    let other_user = store
        .reserve(keyed(hold(&category, "bob", 2, TEN_MINUTES), "k1"))
        .await
        .unwrap();
    assert!(first.changed && !retry.changed && other_user.changed);
    assert_eq!(retry.reservation, first.reservation);
    assert!(matches!(other_qty, Err(ReserveError::IdempotencyKeyReused)));
    assert_eq!(counts(&*store, &category).await.held, 4);
}

async fn the_per_user_limit_counts_holds_and_sales(store: Arc<dyn StockStore>) {
    let category = category(&*store, 100, Some(4)).await;
    let bought = held(&*store, &category, "ann", 2).await;
    settle(&*store, bought.id, "ann", Settlement::Confirm)
        .await
        .unwrap();
    let cancelled = held(&*store, &category, "ann", 2).await;
    let over = store.reserve(hold(&category, "ann", 1, TEN_MINUTES)).await;
    assert!(matches!(over, Err(ReserveError::LimitExceeded { max: 4 })));
    settle(&*store, cancelled.id, "ann", Settlement::Cancel)
        .await
        .unwrap();
    held(&*store, &category, "ann", 2).await;
    assert_eq!(
        counts(&*store, &category).await,
        StockCounts {
            total: 100,
            available: 96,
            held: 2,
            sold: 2
        }
    );
}

async fn a_hold_settles_once(store: Arc<dyn StockStore>) {
    let category = category(&*store, 10, None).await;
    let paid = held(&*store, &category, "ann", 2).await;
    let unpaid = held(&*store, &category, "ann", 3).await;

    let confirmed = settle(&*store, paid.id, "ann", Settlement::Confirm)
        .await
        .unwrap();
    let repeat = settle(&*store, paid.id, "ann", Settlement::Confirm)
        .await
        .unwrap();
    let flip = settle(&*store, paid.id, "ann", Settlement::Cancel).await;
    let cancelled = settle(&*store, unpaid.id, "ann", Settlement::Cancel)
        .await
        .unwrap();
    let stranger = settle(&*store, unpaid.id, "bob", Settlement::Cancel).await;
    let unknown = settle(
        &*store,
        ReservationId::generate(),
        "ann",
        Settlement::Confirm,
    )
    .await;

    assert!(confirmed.changed && !repeat.changed && cancelled.changed);
    assert_eq!(confirmed.reservation.status, ReservationStatus::Confirmed);
    assert_eq!(repeat.reservation, confirmed.reservation);
    assert!(matches!(
        flip,
        Err(SettleError::AlreadyFinal(ReservationStatus::Confirmed))
    ));
    assert_eq!(cancelled.reservation.status, ReservationStatus::Cancelled);
    assert!(matches!(stranger, Err(SettleError::NotFound)));
    assert!(matches!(unknown, Err(SettleError::NotFound)));
    assert_eq!(
        counts(&*store, &category).await,
        StockCounts {
            total: 10,
            available: 8,
            held: 0,
            sold: 2
        }
    );
    let stored = store.reservation(paid.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ReservationStatus::Confirmed);
}

async fn holds_past_their_deadline_expire_once(store: Arc<dyn StockStore>) {
    let category = category(&*store, 10, Some(5)).await;
    let late = store
        .reserve(hold(&category, "ann", 3, Duration::milliseconds(-1)))
        .await
        .unwrap();
    let live = held(&*store, &category, "bob", 1).await;

    let refused = settle(&*store, late.reservation.id, "ann", Settlement::Confirm).await;
    assert!(matches!(refused, Err(SettleError::Expired)));
    store.expire_due(now(), 512).await.unwrap();
    store.expire_due(now(), 512).await.unwrap();

    let expired = store
        .reservation(late.reservation.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expired.status, ReservationStatus::Expired);
    let still = store.reservation(live.id).await.unwrap().unwrap();
    assert_eq!(still.status, ReservationStatus::Held);
    assert_eq!(
        counts(&*store, &category).await,
        StockCounts {
            total: 10,
            available: 9,
            held: 1,
            sold: 0
        }
    );
    let after = settle(&*store, late.reservation.id, "ann", Settlement::Cancel).await;
    assert!(matches!(after, Err(SettleError::Expired)));
    // Ann's expired tickets no longer count against her limit of 5.
    held(&*store, &category, "ann", 5).await;
}

/// This category's live holds, as the gauges read them.
async fn live_holds(store: &dyn StockStore, category: &Category) -> u32 {
    sale(store, category).await.live_holds
}

async fn live_holds_count_each_hold_until_it_ends(store: Arc<dyn StockStore>) {
    let sale = category(&*store, 10, None).await;
    let paid = held(&*store, &sale, "ann", 2).await;
    let cancelled = held(&*store, &sale, "bob", 3).await;
    held(&*store, &sale, "dan", 1).await;
    assert_eq!(live_holds(&*store, &sale).await, 3);
    // Due at once: any sweeper sharing this Redis may expire it, ours below or another test's.
    store
        .reserve(hold(&sale, "cat", 1, Duration::milliseconds(-1)))
        .await
        .unwrap();

    settle(&*store, paid.id, "ann", Settlement::Confirm)
        .await
        .unwrap();
    settle(&*store, cancelled.id, "bob", Settlement::Cancel)
        .await
        .unwrap();
    store.expire_due(now(), 512).await.unwrap();
    assert_eq!(live_holds(&*store, &sale).await, 1);
    // Listed while it has none too, so a gauge falls back to 0.
    let empty = category(&*store, 5, None).await;
    assert_eq!(live_holds(&*store, &empty).await, 0);
}

async fn concurrent_holds_never_oversell(store: Arc<dyn StockStore>) {
    let category = Arc::new(category(&*store, 500, None).await);
    let attempts: Vec<_> = (0..2000)
        .map(|fan| {
            let (store, category) = (store.clone(), category.clone());
            tokio::spawn(async move {
                store
                    .reserve(hold(&category, &format!("fan-{fan}"), 1, TEN_MINUTES))
                    .await
            })
        })
        .collect();
    let (mut won, mut sold_out) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(ReserveError::SoldOut) => sold_out += 1,
            Err(err) => panic!("unexpected {err}"),
        }
    }
    assert_eq!((won, sold_out), (500, 1500));
    assert_eq!(
        counts(&*store, &category).await,
        StockCounts {
            total: 500,
            available: 0,
            held: 500,
            sold: 0
        }
    );
}

async fn reservations_are_rate_limited_per_user_in_a_category(store: Arc<dyn StockStore>) {
    let category = category(&*store, 100, None).await;
    let limit = RateLimit {
        per_minute: 60,
        burst: 3,
    };
    let start = now();
    let request = |user_name: &str, at: DateTime<Utc>| HoldRequest {
        rate_limit: Some(limit),
        now: at,
        expires_at: at + TEN_MINUTES,
        ..hold(&category, user_name, 1, TEN_MINUTES)
    };
    for _ in 0..3 {
        store.reserve(request("ann", start)).await.unwrap();
    }
    let limited = store.reserve(request("ann", start)).await;
    assert!(
        matches!(
            limited,
            Err(ReserveError::RateLimited {
                retry_after_secs: 1
            })
        ),
        "{limited:?}"
    );
    store.reserve(request("bob", start)).await.unwrap();
    // A second later ann has one token again, and only one. (Redis counts by its own clock,
    // so the second really passes, with a margin for the time the requests above took.)
    let later = start + Duration::seconds(1);
    if let Ok(wait) = (later + Duration::milliseconds(150) - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    store.reserve(request("ann", later)).await.unwrap();
    let again = store.reserve(request("ann", later)).await;
    assert!(
        matches!(again, Err(ReserveError::RateLimited { .. })),
        "{again:?}"
    );
    assert_eq!(counts(&*store, &category).await.held, 5);
}

async fn finished_holds_are_forgotten_with_their_keys(store: Arc<dyn StockStore>) {
    let category = category(&*store, 10, None).await;
    let order = || keyed(hold(&category, "ann", 2, TEN_MINUTES), "order-1");
    let bought = store.reserve(order()).await.unwrap().reservation;
    let live = held(&*store, &category, "bob", 1).await;
    settle(&*store, bought.id, "ann", Settlement::Confirm)
        .await
        .unwrap();

    // Ended just now: kept while its retention lasts, listed once it has passed.
    let kept = store
        .finished_holds(now(), Duration::minutes(5), 100_000)
        .await
        .unwrap();
    assert!(!kept.iter().any(|(id, _)| *id == bought.id));
    let due = store
        .finished_holds(now(), Duration::zero(), 100_000)
        .await
        .unwrap();
    assert!(due.contains(&(bought.id, ReservationStatus::Confirmed)));
    assert!(!due.iter().any(|(id, _)| *id == live.id));

    // A live hold is never forgotten, whatever the caller asks.
    assert_eq!(store.forget_holds(&[bought.id, live.id]).await.unwrap(), 1);
    assert_eq!(store.reservation(bought.id).await.unwrap(), None);
    assert!(store.reservation(live.id).await.unwrap().is_some());
    assert_eq!(
        counts(&*store, &category).await,
        StockCounts {
            total: 10,
            available: 7,
            held: 1,
            sold: 2
        }
    );
    // The key went with its hold: the same key makes a new hold now.
    let again = store.reserve(order()).await.unwrap();
    assert!(again.changed);
    assert_ne!(again.reservation.id, bought.id);
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod memory_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::memory()).await })*
        }
        mod redis_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::redis().await).await })*
        }
        mod redis_cluster_store {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::cluster().await).await })*
        }
    };
}

contract!(
    a_hold_moves_stock_and_is_found_by_id,
    an_event_without_categories_has_no_counts,
    refusals_change_nothing,
    an_idempotency_key_holds_once,
    the_per_user_limit_counts_holds_and_sales,
    a_hold_settles_once,
    holds_past_their_deadline_expire_once,
    live_holds_count_each_hold_until_it_ends,
    concurrent_holds_never_oversell,
    reservations_are_rate_limited_per_user_in_a_category,
    finished_holds_are_forgotten_with_their_keys,
);

mod redis_only {
    use super::*;
    use adapter_redis::StockState;
    use domain::ReservationEvent;

    #[tokio::test]
    async fn the_outbox_records_every_change_in_order_until_trimmed() {
        let store = redis().await;
        let category = category(&*store, 10, None).await;
        let reservation = held(&*store, &category, "ann", 2).await;
        settle(&*store, reservation.id, "ann", Settlement::Confirm)
            .await
            .unwrap();

        let key = reservation.id.to_string();
        let ours: Vec<_> = store
            .outbox_batch(10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.key == key)
            .collect();
        let statuses: Vec<_> = ours
            .iter()
            .map(|entry| serde_json::from_str::<ReservationEvent>(&entry.payload).unwrap())
            .map(|event| (event.version, event.reservation.status))
            .collect();
        assert_eq!(
            statuses,
            [
                (1, ReservationStatus::Held),
                (1, ReservationStatus::Confirmed)
            ]
        );

        store.trim_outbox(&ours).await.unwrap();
        let left = store.outbox_batch(10_000).await.unwrap();
        assert!(left.iter().all(|entry| entry.key != key));
    }

    #[tokio::test]
    async fn an_idempotency_key_has_a_ttl_as_a_backstop() {
        let store = redis().await;
        let category = category(&*store, 10, None).await;
        store
            .reserve(keyed(hold(&category, "ann", 1, TEN_MINUTES), "k1"))
            .await
            .unwrap();
        let found = keys_in(9, &format!("*:c:{}:*:idem:*", category.event_id)).await;
        let [key] = found.as_slice() else {
            panic!("one idempotency key, not {found:?}")
        };
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut raw().await)
            .await
            .unwrap();
        let day = i64::from(domain::contracts::IDEMPOTENCY_KEY_TTL_SECS);
        assert!((day - 60..=day).contains(&ttl), "{key} expires in {ttl} s");
    }

    /// Only the stock hash is lost (an eviction, an operator's DEL) while holds remain:
    /// every script refuses to act on half a category until it is rebuilt.
    #[tokio::test]
    async fn a_missing_stock_fails_closed_until_rebuilt() {
        let store = redis().await;
        let category = category(&*store, 10, Some(4)).await;
        let bought = held(&*store, &category, "ann", 2).await;
        settle(&*store, bought.id, "ann", Settlement::Confirm)
            .await
            .unwrap();
        let live = store
            .reserve(hold(&category, "bob", 1, Duration::seconds(2)))
            .await
            .unwrap()
            .reservation;
        let dropped = held(&*store, &category, "cat", 3).await;
        settle(&*store, dropped.id, "cat", Settlement::Cancel)
            .await
            .unwrap();
        let before = counts(&*store, &category).await;
        let mut stored = Vec::new();
        for id in [bought.id, live.id, dropped.id] {
            stored.push(store.reservation(id).await.unwrap().unwrap());
        }

        let stock = keys_in(9, &format!("*:c:{}:*:stock", category.event_id)).await;
        assert_eq!(stock.len(), 1, "{stock:?}");
        redis::cmd("DEL")
            .arg(&stock)
            .query_async::<()>(&mut raw().await)
            .await
            .unwrap();
        assert_eq!(
            store.stock_state(&category).await.unwrap(),
            StockState::Missing
        );
        let reserve = store.reserve(hold(&category, "dan", 1, TEN_MINUTES)).await;
        assert!(
            matches!(reserve, Err(ReserveError::Store(_))),
            "{reserve:?}"
        );
        let pay = settle(&*store, live.id, "bob", Settlement::Confirm).await;
        assert!(matches!(pay, Err(SettleError::Store(_))), "{pay:?}");
        // Past the live hold's deadline, the sweeper leaves it alone too.
        let deadline = Utc::now() + Duration::seconds(3);
        while Utc::now() < deadline {
            store.expire_due(now(), 512).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let untouched = store.reservation(live.id).await.unwrap().unwrap();
        assert_eq!(untouched.status, ReservationStatus::Held);
        assert_eq!(
            store.stock_state(&category).await.unwrap(),
            StockState::Missing
        );

        assert!(
            store
                .restore_category(&category, &stored, false)
                .await
                .unwrap()
        );
        assert!(
            !store
                .restore_category(&category, &stored, false)
                .await
                .unwrap()
        );
        assert_eq!(counts(&*store, &category).await, before);
        // The per-user counts came back: ann owns 2 of her 4.
        let over = store.reserve(hold(&category, "ann", 3, TEN_MINUTES)).await;
        assert!(matches!(over, Err(ReserveError::LimitExceeded { max: 4 })));
        // The live hold, past its deadline now, expires exactly once.
        while store.expire_due(now(), 512).await.unwrap() > 0 {}
        let expired = store.reservation(live.id).await.unwrap().unwrap();
        assert_eq!(expired.status, ReservationStatus::Expired);
        assert_eq!(counts(&*store, &category).await.available, 8);
    }

    /// Counters that break the invariant (here a negative `held`) are seen as broken by the
    /// gauges, and rebuilt when reconcile asks to replace them.
    #[tokio::test]
    async fn broken_counters_are_seen_and_replaced() {
        let store = redis().await;
        let category = category(&*store, 10, None).await;
        let live = held(&*store, &category, "ann", 2).await;
        let stock = keys_in(9, &format!("*:c:{}:*:stock", category.event_id)).await;
        redis::cmd("HSET")
            .arg(&stock[0])
            .arg("held")
            .arg(-5)
            .query_async::<()>(&mut raw().await)
            .await
            .unwrap();

        let gauged = sale(&*store, &category).await;
        assert_eq!(gauged.counts, None);
        assert!(!gauged.is_consistent());
        assert_eq!(
            store.stock_state(&category).await.unwrap(),
            StockState::Broken
        );
        assert!(
            !store
                .restore_category(&category, std::slice::from_ref(&live), false)
                .await
                .unwrap()
        );
        assert!(
            store
                .restore_category(&category, &[live], true)
                .await
                .unwrap()
        );
        assert_eq!(
            counts(&*store, &category).await,
            StockCounts {
                total: 10,
                available: 8,
                held: 2,
                sold: 0
            }
        );
    }

    /// A refused reserve (sold out, unknown category, a replay) leaves nothing behind.
    #[tokio::test]
    async fn a_refused_reserve_writes_nothing() {
        const DB: u8 = 7;
        let store = redis_alone(DB).await;
        let category = category(&*store, 2, None).await;
        let order = || keyed(hold(&category, "ann", 2, TEN_MINUTES), "order-1");
        store.reserve(order()).await.unwrap();
        let before = shape(DB).await;
        for fan in 0..100 {
            let sold_out = store
                .reserve(hold(&category, &format!("fan-{fan}"), 1, TEN_MINUTES))
                .await;
            assert!(matches!(sold_out, Err(ReserveError::SoldOut)));
            let mut unknown = hold(&category, &format!("fan-{fan}"), 1, TEN_MINUTES);
            unknown.category = CategoryName::parse(&format!("Made up {fan}")).unwrap();
            assert!(matches!(
                store.reserve(unknown).await,
                Err(ReserveError::UnknownCategory)
            ));
            assert!(!store.reserve(order()).await.unwrap().changed);
        }
        assert_eq!(shape(DB).await, before);
    }

    /// Every key of a database with its size, to compare before and after.
    async fn shape(db: u8) -> Vec<(String, u64)> {
        let server = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = redis::Client::open(format!("{server}/{db}")).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let mut sizes = Vec::new();
        for key in keys_in(db, "*").await {
            let size: u64 = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            sizes.push((key, size));
        }
        sizes
    }

    /// This category as a sale read from `since` finds it, and the read's mark.
    async fn changed_since(
        store: &dyn StockStore,
        category: &Category,
        since: u64,
    ) -> (Option<StockCounts>, u64) {
        let sale = store.sale_changes(since).await.unwrap();
        let found = sale
            .categories
            .iter()
            .find(|sale| sale.event_id == category.event_id)
            .and_then(|sale| sale.counts);
        (found, sale.next)
    }

    /// Categories are marked changed at most once a second: a read from the last read's mark
    /// still finds every change, however quickly they follow each other.
    #[tokio::test]
    async fn every_change_is_in_the_sale_read_after_it() {
        let store = redis().await;
        let category = category(&*store, 10, None).await;
        let (_, mut mark) = changed_since(&*store, &category, 0).await;
        let first = held(&*store, &category, "ann", 1).await;
        let (seen, next) = changed_since(&*store, &category, mark).await;
        assert_eq!(seen.map(|counts| counts.held), Some(1));
        mark = next;
        held(&*store, &category, "ann", 2).await;
        let (seen, next) = changed_since(&*store, &category, mark).await;
        assert_eq!(seen.map(|counts| counts.held), Some(3));
        mark = next;
        settle(&*store, first.id, "ann", Settlement::Cancel)
            .await
            .unwrap();
        let (seen, _) = changed_since(&*store, &category, mark).await;
        assert_eq!(seen.map(|counts| counts.held), Some(2));
    }

    async fn status_of(store: &dyn StockStore, id: ReservationId) -> ReservationStatus {
        store.reservation(id).await.unwrap().unwrap().status
    }

    async fn lasting(store: &dyn StockStore, category: &Category, ms: i64) -> ReservationId {
        let request = hold(category, "ann", 1, Duration::milliseconds(ms));
        store.reserve(request).await.unwrap().reservation.id
    }

    /// The sweeper finds a category by its first deadline, which a hold ending sooner than
    /// the ones before it moves, and so does the end of the first hold.
    #[tokio::test]
    async fn the_first_hold_to_end_is_swept_whatever_the_order() {
        let store = redis().await;
        let category = category(&*store, 10, None).await;
        held(&*store, &category, "ann", 1).await;
        let sooner = lasting(&*store, &category, -1).await;
        store.expire_due(now(), 512).await.unwrap();
        assert_eq!(status_of(&*store, sooner).await, ReservationStatus::Expired);

        let first = lasting(&*store, &category, 100).await;
        let second = lasting(&*store, &category, 200).await;
        let later = held(&*store, &category, "ann", 1).await.id;
        for id in [first, later] {
            settle(&*store, id, "ann", Settlement::Cancel)
                .await
                .unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        store.expire_due(now(), 512).await.unwrap();
        assert_eq!(status_of(&*store, second).await, ReservationStatus::Expired);
    }

    /// Two processes whose clocks differ by 30 s: Redis's clock decides deadlines, expiry and
    /// rates, so neither expires the other's holds early nor hands out extra tokens.
    #[tokio::test]
    async fn processes_whose_clocks_differ_agree_on_time() {
        let stores = [redis().await, redis().await];
        let skew = Duration::seconds(30);
        let category = category(&*stores[0], 100, None).await;
        let held = stores[0]
            .reserve(hold(&category, "ann", 1, Duration::minutes(1)))
            .await
            .unwrap()
            .reservation;
        // The fast process sweeps at what it thinks is past the deadline: nothing is due.
        stores[1]
            .expire_due(now() + skew + Duration::minutes(1), 512)
            .await
            .unwrap();
        let still = stores[1].reservation(held.id).await.unwrap().unwrap();
        assert_eq!(still.status, ReservationStatus::Held);
        // And a fan paying before the deadline they were shown is not told it expired.
        let paid = stores[1]
            .settle(held.id, &user("ann"), Settlement::Confirm, now() + skew * 3)
            .await
            .unwrap();
        assert!(paid.changed);

        let limit = RateLimit {
            per_minute: 1,
            burst: 2,
        };
        let request = |at: DateTime<Utc>| HoldRequest {
            rate_limit: Some(limit),
            now: at,
            expires_at: at + TEN_MINUTES,
            ..hold(&category, "bob", 1, TEN_MINUTES)
        };
        stores[0].reserve(request(now())).await.unwrap();
        stores[1].reserve(request(now() + skew)).await.unwrap();
        let third = stores[1].reserve(request(now() + skew * 2)).await;
        assert!(
            matches!(third, Err(ReserveError::RateLimited { .. })),
            "{third:?}"
        );
    }

    /// Sweepers of two processes run at once over the same due holds: each expires once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_sweepers_expire_each_hold_once() {
        let stores = [redis().await, redis().await];
        let category = category(&*stores[0], 100, None).await;
        let mut ids = Vec::new();
        for fan in 0..60 {
            let request = hold(
                &category,
                &format!("fan-{fan}"),
                1,
                Duration::milliseconds(-1),
            );
            ids.push(
                stores[fan % 2]
                    .reserve(request)
                    .await
                    .unwrap()
                    .reservation
                    .id
                    .to_string(),
            );
        }
        let sweeps = stores
            .iter()
            .flat_map(|store| (0..4).map(move |_| store.expire_due(now(), 7)));
        for swept in futures_util::future::join_all(sweeps).await {
            swept.unwrap();
        }
        while stores[0].expire_due(now(), 512).await.unwrap() > 0 {}

        assert_eq!(counts(&*stores[1], &category).await, StockCounts::new(100));
        let expired_events = stores[0]
            .outbox_batch(10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| ids.contains(&entry.key))
            .map(|entry| serde_json::from_str::<ReservationEvent>(&entry.payload).unwrap())
            .filter(|event| event.reservation.status == ReservationStatus::Expired)
            .count();
        assert_eq!(expired_events, 60);
    }

    /// A user's bucket lives in Redis: what one process spends, the other cannot.
    #[tokio::test]
    async fn the_rate_limit_holds_across_processes() {
        let stores = [redis().await, redis().await];
        let category = category(&*stores[0], 100, None).await;
        let limit = RateLimit {
            per_minute: 60,
            burst: 3,
        };
        let start = now();
        let request = || HoldRequest {
            rate_limit: Some(limit),
            now: start,
            ..hold(&category, "ann", 1, TEN_MINUTES)
        };
        for store in [&stores[0], &stores[1], &stores[0]] {
            store.reserve(request()).await.unwrap();
        }
        for store in &stores {
            let limited = store.reserve(request()).await;
            assert!(
                matches!(limited, Err(ReserveError::RateLimited { .. })),
                "{limited:?}"
            );
        }
    }

    /// Two stores with their own connections stand for two `ticketd` processes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_on_one_redis_never_oversell() {
        let stores: [Arc<dyn StockStore>; 2] = [redis().await, redis().await];
        let category = Arc::new(category(&*stores[0], 300, None).await);
        let attempts: Vec<_> = (0..1200)
            .map(|fan| {
                let (store, category) = (stores[fan % 2].clone(), category.clone());
                tokio::spawn(async move {
                    store
                        .reserve(hold(&category, &format!("fan-{fan}"), 1, TEN_MINUTES))
                        .await
                        .is_ok()
                })
            })
            .collect();
        let mut won = 0;
        for attempt in attempts {
            won += usize::from(attempt.await.unwrap());
        }
        assert_eq!(won, 300);
        assert_eq!(
            counts(&*stores[1], &category).await,
            StockCounts {
                total: 300,
                available: 0,
                held: 300,
                sold: 0
            }
        );
    }
}
