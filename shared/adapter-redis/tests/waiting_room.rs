//! The `WaitingRoom` contract, run against the memory adapter, a real Redis (database 9, as
//! the stock store tests) and the local Redis Cluster. Every test makes its own event. The
//! memory store runs on the `now` it is given, Redis on its own clock: the tests pass the
//! real time, and wait on state with bounded polls.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use adapter_memory::MemoryWaitingRoom;
use chrono::{Duration, Utc};
use domain::waiting_room::{
    AdmissionTtl, AdmitBudget, AdmitRate, IDLE_QUEUE_KEPT_MS, LAPSED_ADMISSION_KEPT_MS, QueueError,
    QueueStatus, WaitingRoom, WaitingRoomSettings,
};
use domain::{EventId, UserId};

mod common;

fn fan(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn settings(rate: i64) -> WaitingRoomSettings {
    WaitingRoomSettings {
        enabled: true,
        admit_per_second: AdmitRate::new(rate).unwrap(),
        admission_ttl: AdmissionTtl::new(60).unwrap(),
        opens_at: None,
    }
}

const OPEN: AdmitBudget = AdmitBudget {
    max_admitted: 1_000,
    sold_out: false,
};

async fn room(store: &dyn WaitingRoom, settings: WaitingRoomSettings) -> EventId {
    let event = EventId::generate();
    store.configure(event, &settings).await.unwrap();
    event
}

async fn status(store: &dyn WaitingRoom, event: EventId, name: &str) -> (QueueStatus, u64) {
    let place = store.place(event, &fan(name), Utc::now()).await.unwrap();
    let place = place.unwrap_or_else(|| panic!("{name} is not in the queue"));
    (place.status, place.position)
}

async fn first_come_first_served_and_joining_twice_keeps_the_place(store: Arc<dyn WaitingRoom>) {
    let event = room(&*store, settings(100)).await;
    for (at, name) in ["ann", "bob", "cat"].into_iter().enumerate() {
        let joined = store
            .join(event, &fan(name), 0.5, Utc::now())
            .await
            .unwrap();
        assert!(joined.created);
        assert_eq!(
            (joined.place.status, joined.place.position),
            (QueueStatus::Waiting, at as u64 + 1)
        );
    }
    let again = store
        .join(event, &fan("bob"), 0.0, Utc::now())
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.place.position, 2);
    assert!(
        store
            .place(event, &fan("dan"), Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.rooms().await.unwrap().contains(&event));
}

async fn admission_keeps_the_pace_and_the_budget(store: Arc<dyn WaitingRoom>) {
    let event = room(&*store, settings(3)).await;
    let names: Vec<String> = (0..10).map(|n| format!("fan{n}")).collect();
    for name in &names {
        store
            .join(event, &fan(name), 0.5, Utc::now())
            .await
            .unwrap();
    }
    let before = store.mark(event).await.unwrap().unwrap();
    // The first round has a second's worth (3), but the budget allows 2 admitted at once.
    let budget = AdmitBudget {
        max_admitted: 2,
        sold_out: false,
    };
    let round = store.admit(event, budget, Utc::now()).await.unwrap();
    assert_eq!((round.waits.len(), round.queued), (2, 8));
    assert_eq!(
        status(&*store, event, "fan0").await.0,
        QueueStatus::Admitted
    );
    assert_eq!(
        status(&*store, event, "fan2").await,
        (QueueStatus::Waiting, 1)
    );
    // The budget is full: no one more, whatever the pace allows.
    let round = store.admit(event, budget, Utc::now()).await.unwrap();
    assert!(round.waits.is_empty());
    // A waiting fan's position fell by exactly what the mark's total grew.
    let after = store.mark(event).await.unwrap().unwrap();
    assert_eq!(after.admitted_total - before.admitted_total, 2);
    assert!(after.version > before.version);
    let joined = store
        .join(event, &fan("fan9"), 0.5, Utc::now())
        .await
        .unwrap();
    assert_eq!(joined.place.position, 10 - 2);
    // Only what the pace gave back since (about one), and never the same fan twice.
    let round = store.admit(event, OPEN, Utc::now()).await.unwrap();
    assert!(round.waits.len() <= 2, "{round:?}");
    let mut admitted = 0;
    for name in &names {
        admitted += usize::from(status(&*store, event, name).await.0 == QueueStatus::Admitted);
    }
    assert_eq!(admitted, 2 + round.waits.len());
}

async fn sold_out_tells_every_waiting_fan_and_returning_stock_reopens(store: Arc<dyn WaitingRoom>) {
    let event = room(&*store, settings(1)).await;
    for name in ["ann", "bob", "cat"] {
        store
            .join(event, &fan(name), 0.5, Utc::now())
            .await
            .unwrap();
    }
    store.admit(event, OPEN, Utc::now()).await.unwrap();
    let sold_out = AdmitBudget {
        max_admitted: 0,
        sold_out: true,
    };
    let round = store.admit(event, sold_out, Utc::now()).await.unwrap();
    assert!(round.waits.is_empty());
    assert_eq!(status(&*store, event, "ann").await.0, QueueStatus::Admitted);
    assert_eq!(
        status(&*store, event, "bob").await,
        (QueueStatus::SoldOut, 1)
    );
    assert!(store.mark(event).await.unwrap().unwrap().sold_out);
    let late = store
        .join(event, &fan("dan"), 0.5, Utc::now())
        .await
        .unwrap();
    assert_eq!(late.place.status, QueueStatus::SoldOut);
    store.admit(event, OPEN, Utc::now()).await.unwrap();
    assert_eq!(status(&*store, event, "cat").await.0, QueueStatus::Waiting);
}

async fn fans_who_join_before_opening_are_served_in_their_draws_order(store: Arc<dyn WaitingRoom>) {
    let opens_at = Utc::now() + Duration::milliseconds(700);
    let event = room(
        &*store,
        WaitingRoomSettings {
            opens_at: Some(opens_at),
            ..settings(100)
        },
    )
    .await;
    for (name, draw) in [("ann", 0.9), ("bob", 0.1), ("cat", 0.5)] {
        store
            .join(event, &fan(name), draw, Utc::now())
            .await
            .unwrap();
    }
    let round = store.admit(event, OPEN, Utc::now()).await.unwrap();
    assert!(round.waits.is_empty(), "admitted before opening");
    assert_eq!(status(&*store, event, "bob").await.1, 1);
    wait_until(opens_at).await;
    let late = store
        .join(event, &fan("dan"), 0.0, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        late.place.position, 4,
        "after opening, the back of the queue"
    );
    let admitted = store.admit(event, OPEN, Utc::now()).await.unwrap();
    assert_eq!(admitted.waits.len(), 4);
    for name in ["bob", "cat", "ann"] {
        assert_eq!(status(&*store, event, name).await.0, QueueStatus::Admitted);
    }
}

async fn turning_the_room_off_empties_it(store: Arc<dyn WaitingRoom>) {
    let event = room(&*store, settings(10)).await;
    store
        .join(event, &fan("ann"), 0.5, Utc::now())
        .await
        .unwrap();
    let off = WaitingRoomSettings {
        enabled: false,
        ..settings(10)
    };
    store.configure(event, &off).await.unwrap();
    assert!(store.settings(event).await.unwrap().is_none());
    assert!(store.mark(event).await.unwrap().is_none());
    assert!(!store.rooms().await.unwrap().contains(&event));
    let refused = store.join(event, &fan("ann"), 0.5, Utc::now()).await;
    assert!(matches!(refused, Err(QueueError::NoWaitingRoom)));
    let refused = store.place(event, &fan("ann"), Utc::now()).await;
    assert!(matches!(refused, Err(QueueError::NoWaitingRoom)));
}

async fn wait_until(at: chrono::DateTime<Utc>) {
    let left = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + StdDuration::from_millis(20)).await;
}

fn memory() -> Arc<dyn WaitingRoom> {
    Arc::new(MemoryWaitingRoom::default())
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod memory_room {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::memory()).await })*
        }
        mod redis_room {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::common::redis().await).await })*
        }
        mod redis_cluster_room {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::common::cluster().await).await })*
        }
    };
}

contract!(
    first_come_first_served_and_joining_twice_keeps_the_place,
    admission_keeps_the_pace_and_the_budget,
    sold_out_tells_every_waiting_fan_and_returning_stock_reopens,
    fans_who_join_before_opening_are_served_in_their_draws_order,
    turning_the_room_off_empties_it,
);

/// A lapsed admission reads as such, even after admit rounds (which no longer count it), and
/// joining again queues the fan at the back. On the memory store, whose clock the test moves.
#[tokio::test]
async fn a_lapsed_admission_sends_the_fan_to_the_back() {
    let store = memory();
    let now = Utc::now();
    let event = room(&*store, settings(1)).await;
    for name in ["ann", "bob", "cat"] {
        store.join(event, &fan(name), 0.5, now).await.unwrap();
    }
    let one = AdmitBudget {
        max_admitted: 1,
        sold_out: false,
    };
    store.admit(event, one, now).await.unwrap();
    let later = now + Duration::seconds(61);
    let round = store.admit(event, one, later).await.unwrap();
    assert_eq!(round.waits.len(), 1, "a lapsed admission holds no one back");
    let ann = store
        .place(event, &fan("ann"), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.status, QueueStatus::Expired);
    let again = store.join(event, &fan("ann"), 0.5, later).await.unwrap();
    assert!(again.created);
    assert_eq!(
        (again.place.status, again.place.position),
        (QueueStatus::Waiting, 2)
    );
    // Long after its deadline, a lapsed admission is forgotten.
    let much_later = later + Duration::seconds(61);
    store.admit(event, one, much_later).await.unwrap();
    let forgotten = much_later + Duration::milliseconds(LAPSED_ADMISSION_KEPT_MS);
    store.admit(event, OPEN, forgotten).await.unwrap();
    assert!(
        store
            .place(event, &fan("bob"), forgotten)
            .await
            .unwrap()
            .is_none()
    );
}

/// The same on Redis, whose clock the test cannot move: an admission is made to have lapsed
/// by moving its deadline back in the room's sorted set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_admission_reads_as_such_after_admit_rounds_on_redis() {
    let store = common::redis().await;
    let event = room(&*store, settings(100)).await;
    for name in ["ann", "bob"] {
        store
            .join(event, &fan(name), 0.5, Utc::now())
            .await
            .unwrap();
    }
    let one = AdmitBudget {
        max_admitted: 1,
        sold_out: false,
    };
    store.admit(event, one, Utc::now()).await.unwrap();
    assert_eq!(status(&*store, event, "ann").await.0, QueueStatus::Admitted);
    let lapsed = Utc::now().timestamp_millis() - 5_000;
    let _: i64 = redis::cmd("ZADD")
        .arg(format!("wr:{{{event}}}:admitted"))
        .arg(lapsed)
        .arg("ann")
        .query_async(&mut common::raw().await)
        .await
        .unwrap();
    let round = store.admit(event, one, Utc::now()).await.unwrap();
    assert_eq!(round.waits.len(), 1, "a lapsed admission holds no one back");
    assert_eq!(status(&*store, event, "ann").await.0, QueueStatus::Expired);
    let again = store
        .join(event, &fan("ann"), 0.5, Utc::now())
        .await
        .unwrap();
    assert!(again.created);
    assert_eq!(again.place.status, QueueStatus::Waiting);
}

/// A queue that stops moving leaves Redis on its own, a day after its last join or admission
/// (or after opening, for fans who joined early), so Redis does not keep every past sale's fans.
#[tokio::test]
async fn an_idle_queue_leaves_redis_a_day_after_it_last_moved() {
    let store = common::redis().await;
    let mut raw = common::raw().await;
    let day = IDLE_QUEUE_KEPT_MS;
    let keys = |event: EventId| {
        [
            format!("wr:{{{event}}}:queue"),
            format!("wr:{{{event}}}:admitted"),
        ]
    };
    let opens_in_two_days = WaitingRoomSettings {
        opens_at: Some(Utc::now() + Duration::days(2)),
        ..settings(100)
    };
    let early = room(&*store, opens_in_two_days).await;
    store
        .join(early, &fan("ann"), 0.5, Utc::now())
        .await
        .unwrap();
    let [queue, _] = keys(early);
    let kept: i64 = redis::cmd("PTTL")
        .arg(&queue)
        .query_async(&mut raw)
        .await
        .unwrap();
    let two_days = Duration::days(2).num_milliseconds();
    assert!(
        (two_days + day - 60_000..=two_days + day).contains(&kept),
        "an early queue is kept a day past opening, not {kept} ms"
    );

    let open = room(&*store, settings(100)).await;
    for name in ["ann", "bob"] {
        store.join(open, &fan(name), 0.5, Utc::now()).await.unwrap();
    }
    let one = AdmitBudget {
        max_admitted: 1,
        sold_out: false,
    };
    store.admit(open, one, Utc::now()).await.unwrap();
    for key in keys(open) {
        let kept: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            (day - 60_000..=day).contains(&kept),
            "{key} is kept a day after it last moved, not {kept} ms"
        );
    }
}

/// Two stores on one Redis (two processes) running admit rounds at once share one pace and
/// admit no one twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_pace_and_admit_no_one_twice() {
    let (first, second) = (common::redis().await, common::redis().await);
    let event = room(&*first, settings(50)).await;
    for n in 0..200 {
        first
            .join(event, &fan(&format!("fan{n}")), 0.5, Utc::now())
            .await
            .unwrap();
    }
    let rounds = (0..20).map(|round| {
        let store = if round % 2 == 0 { &first } else { &second };
        store.admit(event, OPEN, Utc::now())
    });
    let admitted: usize = futures_util::future::try_join_all(rounds)
        .await
        .unwrap()
        .iter()
        .map(|round| round.waits.len())
        .sum();
    // One second's worth at most (the rounds took far less than a second more).
    assert!((50..=60).contains(&admitted), "{admitted}");
    let mark = first.mark(event).await.unwrap().unwrap();
    assert_eq!(mark.admitted_total, admitted as u64);
    let mut seen = 0;
    for n in 0..200 {
        let status = status(&*first, event, &format!("fan{n}")).await.0;
        seen += usize::from(status == QueueStatus::Admitted);
    }
    assert_eq!(seen, admitted, "every fan admitted once, as counted");
}
