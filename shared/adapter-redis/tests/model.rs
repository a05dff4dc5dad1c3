//! Model-based test of the stock stores: random sequences of reservations (with and without
//! idempotency keys), payments, cancellations, attempts by the wrong user, clock jumps and
//! sweeps, from several users on several categories, applied to a store and to a plain
//! reference model. After every step the outcome, every category's counters and the
//! invariants must agree. Runs on the memory store and on Redis (database 8, emptied first).
//! Redis keeps time by its own clock, which a test cannot move: its cases make no clock
//! jumps, and expiry on Redis is covered by the contract suite with real deadlines.
//!
//! Also here: arbitrary user ids and Idempotency-Keys (colons included) get the same answers
//! from both stores, so no two users or keys ever share a hold.

use std::collections::HashMap;
use std::sync::Arc;

use adapter_memory::{MemoryStockStore, channel};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use domain::contracts::{HoldRequest, ReserveError, SettleError, Settlement, StockStore};
use domain::{
    Category, CategoryName, EventId, IdempotencyKey, PerUserLimit, Price, Qty, ReservationId,
    ReservationStatus, StockCounts, TotalStock, UserId,
};
use proptest::prelude::*;

mod common;

use common::{cluster, redis_alone};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const USERS: usize = 3;
const TTL_SECS: i64 = 60;
/// (total, max per user) of the categories every case starts with.
const CATEGORIES: [(u32, Option<u32>); 2] = [(6, None), (10, Some(3))];

#[derive(Debug, Clone)]
enum Op {
    Reserve {
        user: usize,
        category: usize,
        qty: u32,
        key: Option<u8>,
    },
    Settle {
        hold: usize,
        user: usize,
        pay: bool,
    },
    Advance {
        secs: i64,
    },
    Sweep,
}

/// Clock jumps only where the store takes its time from the caller.
fn op(clock_jumps: bool) -> impl Strategy<Value = Op> {
    let jump = if clock_jumps { 1 } else { 0 };
    prop_oneof![
        4 => (0..USERS, 0..CATEGORIES.len(), 1..=4u32, proptest::option::of(0..2u8))
            .prop_map(|(user, category, qty, key)| Op::Reserve { user, category, qty, key }),
        3 => (any::<usize>(), 0..USERS, any::<bool>())
            .prop_map(|(hold, user, pay)| Op::Settle { hold, user, pay }),
        jump => (1..=45i64).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Sweep),
    ]
}

/// What a step answered, in terms both sides can give.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done {
        status: ReservationStatus,
        changed: bool,
    },
    SoldOut,
    LimitExceeded,
    KeyReused,
    NotFound,
    Expired,
    AlreadyFinal,
    Swept,
}

struct ModelHold {
    user: usize,
    category: usize,
    qty: u32,
    status: ReservationStatus,
    deadline: DateTime<Utc>,
}

struct ModelCategory {
    counts: StockCounts,
    max: Option<u32>,
    owned: HashMap<usize, u32>,
}

#[derive(Default)]
struct Model {
    categories: Vec<ModelCategory>,
    holds: Vec<ModelHold>,
    keys: HashMap<(usize, usize, u8), usize>,
}

impl Model {
    fn new() -> Self {
        let categories = CATEGORIES
            .iter()
            .map(|&(total, max)| ModelCategory {
                counts: StockCounts::new(total),
                max,
                owned: HashMap::new(),
            })
            .collect();
        Self {
            categories,
            ..Self::default()
        }
    }

    /// Returns the outcome and, for a new hold, its index.
    fn reserve(
        &mut self,
        user: usize,
        category: usize,
        qty: u32,
        key: Option<u8>,
        now: DateTime<Utc>,
    ) -> (Outcome, Option<usize>) {
        if let Some(&earlier) = key.and_then(|key| self.keys.get(&(user, category, key))) {
            let hold = &self.holds[earlier];
            if hold.qty != qty {
                return (Outcome::KeyReused, None);
            }
            return (
                Outcome::Done {
                    status: hold.status,
                    changed: false,
                },
                None,
            );
        }
        let stock = &mut self.categories[category];
        let owned = stock.owned.get(&user).copied().unwrap_or(0);
        if stock.max.is_some_and(|max| owned + qty > max) {
            return (Outcome::LimitExceeded, None);
        }
        if stock.counts.available < qty {
            return (Outcome::SoldOut, None);
        }
        stock.counts.available -= qty;
        stock.counts.held += qty;
        *stock.owned.entry(user).or_default() += qty;
        self.holds.push(ModelHold {
            user,
            category,
            qty,
            status: ReservationStatus::Held,
            deadline: now + Duration::seconds(TTL_SECS),
        });
        let index = self.holds.len() - 1;
        if let Some(key) = key {
            self.keys.insert((user, category, key), index);
        }
        (
            Outcome::Done {
                status: ReservationStatus::Held,
                changed: true,
            },
            Some(index),
        )
    }

    fn finish(&mut self, index: usize, status: ReservationStatus) {
        let hold = &mut self.holds[index];
        hold.status = status;
        let stock = &mut self.categories[hold.category];
        stock.counts.held -= hold.qty;
        if status == ReservationStatus::Confirmed {
            stock.counts.sold += hold.qty;
        } else {
            stock.counts.available += hold.qty;
            *stock.owned.entry(hold.user).or_default() -= hold.qty;
        }
    }

    fn settle(&mut self, index: usize, user: usize, pay: bool, now: DateTime<Utc>) -> Outcome {
        let wanted = if pay {
            ReservationStatus::Confirmed
        } else {
            ReservationStatus::Cancelled
        };
        let hold = &self.holds[index];
        if hold.user != user {
            return Outcome::NotFound;
        }
        match hold.status {
            ReservationStatus::Held if now >= hold.deadline => Outcome::Expired,
            ReservationStatus::Held => {
                self.finish(index, wanted);
                Outcome::Done {
                    status: wanted,
                    changed: true,
                }
            }
            ReservationStatus::Expired => Outcome::Expired,
            status if status == wanted => Outcome::Done {
                status,
                changed: false,
            },
            _ => Outcome::AlreadyFinal,
        }
    }

    fn sweep(&mut self, now: DateTime<Utc>) {
        let due: Vec<usize> = (0..self.holds.len())
            .filter(|&i| {
                self.holds[i].status == ReservationStatus::Held && self.holds[i].deadline <= now
            })
            .collect();
        for index in due {
            self.finish(index, ReservationStatus::Expired);
        }
    }
}

fn user(index: usize) -> UserId {
    UserId::parse(&format!("user-{index}")).unwrap()
}

fn outcome_of_reserve(
    result: Result<domain::contracts::ReservationChange, ReserveError>,
) -> Result<Outcome, TestCaseError> {
    Ok(match result {
        Ok(change) => Outcome::Done {
            status: change.reservation.status,
            changed: change.changed,
        },
        Err(ReserveError::SoldOut) => Outcome::SoldOut,
        Err(ReserveError::LimitExceeded { .. }) => Outcome::LimitExceeded,
        Err(ReserveError::IdempotencyKeyReused) => Outcome::KeyReused,
        Err(err) => return Err(TestCaseError::fail(format!("unexpected {err}"))),
    })
}

fn outcome_of_settle(
    result: Result<domain::contracts::ReservationChange, SettleError>,
) -> Result<Outcome, TestCaseError> {
    Ok(match result {
        Ok(change) => Outcome::Done {
            status: change.reservation.status,
            changed: change.changed,
        },
        Err(SettleError::NotFound) => Outcome::NotFound,
        Err(SettleError::Expired) => Outcome::Expired,
        Err(SettleError::AlreadyFinal(_)) => Outcome::AlreadyFinal,
        Err(err) => return Err(TestCaseError::fail(format!("unexpected {err}"))),
    })
}

async fn run_case(store: &dyn StockStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let event_id = EventId::generate();
    let mut names = Vec::new();
    for (index, &(total, max)) in CATEGORIES.iter().enumerate() {
        let category = Category {
            event_id,
            name: CategoryName::parse(&format!("C{index}")).unwrap(),
            total_stock: TotalStock::new(total.into()).unwrap(),
            price: Price::from_cents(100).unwrap(),
            max_per_user: max.map(|max| PerUserLimit::new(max.into()).unwrap()),
        };
        store
            .add_category(&category)
            .await
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        names.push(category.name);
    }
    let mut model = Model::new();
    let mut ids: Vec<ReservationId> = Vec::new();
    let mut now = Utc::now().trunc_subsecs(3);

    for (step, op) in ops.iter().enumerate() {
        let (expected, actual) = match *op {
            Op::Reserve {
                user: who,
                category,
                qty,
                key,
            } => {
                let request = HoldRequest {
                    event_id,
                    category: names[category].clone(),
                    user: user(who),
                    qty: Qty::new(qty.into()).unwrap(),
                    idempotency_key: key
                        .map(|key| IdempotencyKey::parse(&format!("key-{key}")).unwrap()),
                    rate_limit: None,
                    now,
                    expires_at: now + Duration::seconds(TTL_SECS),
                };
                let result = store.reserve(request).await;
                if let Ok(change) = &result
                    && change.changed
                {
                    ids.push(change.reservation.id);
                }
                let (expected, _) = model.reserve(who, category, qty, key, now);
                (expected, outcome_of_reserve(result)?)
            }
            Op::Settle {
                hold,
                user: who,
                pay,
            } => {
                if ids.is_empty() {
                    continue;
                }
                let index = hold % ids.len();
                let settlement = if pay {
                    Settlement::Confirm
                } else {
                    Settlement::Cancel
                };
                let result = store.settle(ids[index], &user(who), settlement, now).await;
                (
                    model.settle(index, who, pay, now),
                    outcome_of_settle(result)?,
                )
            }
            Op::Advance { secs } => {
                now += Duration::seconds(secs);
                continue;
            }
            Op::Sweep => {
                model.sweep(now);
                while store
                    .expire_due(now, 1000)
                    .await
                    .map_err(|err| TestCaseError::fail(err.to_string()))?
                    > 0
                {}
                (Outcome::Swept, Outcome::Swept)
            }
        };
        prop_assert_eq!(&actual, &expected, "step {} {:?}", step, op);

        let mut counts = store
            .counts(event_id, &names)
            .await
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        counts.sort_by(|a, b| a.0.cmp(&b.0));
        for (index, (name, stored)) in counts.iter().enumerate() {
            prop_assert_eq!(name, &names[index]);
            prop_assert!(
                stored.is_consistent(),
                "invariant broken at step {}: {:?}",
                step,
                stored
            );
            prop_assert_eq!(
                stored,
                &model.categories[index].counts,
                "step {} {:?}",
                step,
                op
            );
        }
    }
    for (index, id) in ids.iter().enumerate() {
        let stored = store
            .reservation(*id)
            .await
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(stored.map(|r| r.status), Some(model.holds[index].status));
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn check(
    runtime: &tokio::runtime::Runtime,
    store: Arc<dyn StockStore>,
    cases: u32,
    clock_jumps: bool,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let ops = proptest::collection::vec(op(clock_jumps), 1..40);
    let result = runner.run(&ops, |ops| runtime.block_on(run_case(&*store, &ops)));
    if let Err(err) = result {
        panic!("{err}");
    }
}

#[test]
fn the_memory_store_behaves_like_the_model() {
    let store = Arc::new(MemoryStockStore::new(channel().0));
    check(&runtime(), store, 256, true);
}

#[test]
fn the_redis_store_behaves_like_the_model() {
    let runtime = runtime();
    let store = runtime.block_on(redis_alone(8));
    check(&runtime, store, 128, false);
}

/// The only test of this binary on the cluster, so no other sweeper shares it.
#[test]
fn the_redis_cluster_store_behaves_like_the_model() {
    let runtime = runtime();
    let store = runtime.block_on(cluster());
    check(&runtime, store, 64, false);
}

/// For each request, the index of the request whose hold it got (itself when new).
async fn holders(
    store: &dyn StockStore,
    requests: &[(String, String)],
) -> Result<Vec<usize>, TestCaseError> {
    let category = Category {
        event_id: EventId::generate(),
        name: CategoryName::parse("Keys").unwrap(),
        total_stock: TotalStock::new(1000).unwrap(),
        price: Price::from_cents(100).unwrap(),
        max_per_user: None,
    };
    let fail = |err: String| TestCaseError::fail(err);
    store
        .add_category(&category)
        .await
        .map_err(|err| fail(err.to_string()))?;
    let now = Utc::now();
    let mut made: HashMap<ReservationId, usize> = HashMap::new();
    let mut answers = Vec::new();
    for (index, (who, key)) in requests.iter().enumerate() {
        let request = HoldRequest {
            event_id: category.event_id,
            category: category.name.clone(),
            user: UserId::parse(who).map_err(fail)?,
            qty: Qty::new(1).unwrap(),
            idempotency_key: Some(IdempotencyKey::parse(key).map_err(fail)?),
            rate_limit: None,
            now,
            expires_at: now + Duration::minutes(10),
        };
        let change = store
            .reserve(request)
            .await
            .map_err(|err| fail(err.to_string()))?;
        answers.push(*made.entry(change.reservation.id).or_insert(index));
    }
    Ok(answers)
}

#[test]
fn arbitrary_users_and_keys_get_the_same_holds_from_both_stores() {
    let runtime = runtime();
    let memory: Arc<dyn StockStore> = Arc::new(MemoryStockStore::new(channel().0));
    let redis: Arc<dyn StockStore> = runtime.block_on(redis_alone(6));
    // Few characters, colons among them, so that joins of one pair spell another.
    let part = "[ab:]{1,4}";
    let requests = proptest::collection::vec((part, part), 1..16);
    let mut runner = TestRunner::new(Config {
        cases: 128,
        ..Config::default()
    });
    let result = runner.run(&requests, |requests| {
        runtime.block_on(async {
            let expected = holders(&*memory, &requests).await?;
            let actual = holders(&*redis, &requests).await?;
            prop_assert_eq!(actual, expected, "{:?}", requests);
            Ok(())
        })
    });
    if let Err(err) = result {
        panic!("{err}");
    }
}
