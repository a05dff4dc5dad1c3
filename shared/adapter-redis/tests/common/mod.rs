//! Helpers of the stock store tests: stores, categories and holds. Each test binary uses a
//! part of them.
#![allow(dead_code)]

use std::sync::Arc;

use adapter_memory::{MemoryStockStore, channel};
use adapter_redis::{RedisStockStore, RedisTarget, ReplicaAcks};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use domain::contracts::{CategorySale, HoldRequest, SettleError, Settlement, StockStore};
use domain::{
    Category, CategoryName, EventId, IdempotencyKey, PerUserLimit, Price, Qty, Reservation,
    ReservationId, StockCounts, TotalStock, UserId,
};

pub fn redis_url() -> String {
    let server = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    format!("{server}/9")
}

/// A store on the tests' Redis database, which is emptied once per test binary before its
/// first use: no relay trims the outboxes here, so earlier runs' entries would pile up.
pub async fn redis() -> Arc<RedisStockStore> {
    static EMPTIED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    EMPTIED
        .get_or_init(|| async {
            let emptied: Result<(), _> = redis::cmd("FLUSHDB").query_async(&mut raw().await).await;
            emptied.unwrap_or_else(|err| panic!("FLUSHDB on {}: {err}", redis_url()));
        })
        .await;
    let url = redis_url();
    let store = RedisStockStore::connect(&RedisTarget::Server(url.clone())).await;
    Arc::new(store.unwrap_or_else(|err| panic!("Redis at {url} (infra/local-stack.sh): {err}")))
}

/// The seed nodes of the tests' Redis Cluster (`infra/local-stack.sh --cluster`).
pub fn cluster_nodes() -> Vec<String> {
    std::env::var("REDIS_CLUSTER_NODES")
        .unwrap_or_else(|_| "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".into())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A store on the tests' Redis Cluster, emptied once per test binary, that answers a change
/// once a replica has it.
pub async fn cluster() -> Arc<RedisStockStore> {
    static EMPTIED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let nodes = cluster_nodes();
    fn unreachable<T>(err: &dyn std::fmt::Display) -> T {
        panic!(
            "Redis Cluster at {:?} (infra/local-stack.sh --cluster): {err}",
            cluster_nodes()
        )
    }
    EMPTIED
        .get_or_init(|| async {
            let urls = nodes.iter().map(|node| format!("redis://{node}"));
            let client = redis::cluster::ClusterClient::new(urls).unwrap();
            let mut connection = client
                .get_async_connection()
                .await
                .unwrap_or_else(|err| unreachable(&err));
            let flushed: Result<(), _> = redis::cmd("FLUSHALL").query_async(&mut connection).await;
            flushed.unwrap_or_else(|err| unreachable(&err));
        })
        .await;
    let store = RedisStockStore::connect(&RedisTarget::Cluster(nodes.clone()))
        .await
        .unwrap_or_else(|err| unreachable(&err))
        .with_replica_acks(ReplicaAcks {
            replicas: 1,
            timeout_ms: 2000,
        })
        .await
        .unwrap_or_else(|err| unreachable(&err));
    Arc::new(store)
}

pub fn memory() -> Arc<dyn StockStore> {
    Arc::new(MemoryStockStore::new(channel().0))
}

pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

pub fn floor() -> CategoryName {
    CategoryName::parse("Floor").unwrap()
}

pub async fn category(store: &dyn StockStore, total: u32, max_per_user: Option<u32>) -> Category {
    let category = Category {
        event_id: EventId::generate(),
        name: floor(),
        total_stock: TotalStock::new(total.into()).unwrap(),
        price: Price::from_cents(1000).unwrap(),
        max_per_user: max_per_user.map(|max| PerUserLimit::new(max.into()).unwrap()),
    };
    store.add_category(&category).await.unwrap();
    category
}

pub fn hold(category: &Category, user_name: &str, qty: i64, lasts: Duration) -> HoldRequest {
    let now = now();
    HoldRequest {
        event_id: category.event_id,
        category: category.name.clone(),
        user: user(user_name),
        qty: Qty::new(qty).unwrap(),
        idempotency_key: None,
        rate_limit: None,
        now,
        expires_at: now + lasts,
    }
}

pub fn keyed(mut request: HoldRequest, key: &str) -> HoldRequest {
    request.idempotency_key = Some(IdempotencyKey::parse(key).unwrap());
    request
}

pub async fn counts(store: &dyn StockStore, category: &Category) -> StockCounts {
    let counts = store
        .counts(category.event_id, std::slice::from_ref(&category.name))
        .await
        .unwrap();
    assert_eq!(counts.len(), 1);
    assert!(counts[0].1.is_consistent(), "{:?}", counts[0].1);
    counts[0].1
}

pub async fn held(
    store: &dyn StockStore,
    category: &Category,
    user_name: &str,
    qty: i64,
) -> Reservation {
    let request = hold(category, user_name, qty, Duration::minutes(10));
    store.reserve(request).await.unwrap().reservation
}

pub async fn settle(
    store: &dyn StockStore,
    id: ReservationId,
    user_name: &str,
    settlement: Settlement,
) -> Result<domain::contracts::ReservationChange, SettleError> {
    store.settle(id, &user(user_name), settlement, now()).await
}

pub const TEN_MINUTES: Duration = Duration::minutes(10);

/// A plain connection to the tests' Redis database, for what the adapter does not do.
pub async fn raw() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// A category's sale as the gauges read it.
pub async fn sale(store: &dyn StockStore, category: &Category) -> CategorySale {
    let sale = store.sale_changes(0).await.unwrap();
    sale.categories
        .into_iter()
        .find(|sale| sale.event_id == category.event_id && sale.name == category.name)
        .expect("every category is in a first read of the sale")
}

/// A store on a Redis database of one test's own, emptied first: for what must count keys.
pub async fn redis_alone(db: u8) -> Arc<RedisStockStore> {
    let server = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let url = format!("{server}/{db}");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    Arc::new(
        RedisStockStore::connect(&RedisTarget::Server(url))
            .await
            .unwrap(),
    )
}

/// Keys of the database at `db` whose name matches `pattern`.
pub async fn keys_in(db: u8, pattern: &str) -> Vec<String> {
    let server = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(format!("{server}/{db}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut connection)
        .await
        .unwrap();
    keys.sort();
    keys
}
