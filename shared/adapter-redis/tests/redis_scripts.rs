//! Redis forgetting its scripts (a restart, SCRIPT FLUSH) under the adapter, on database 9
//! like the contract suite. A test binary of its own: SCRIPT FLUSH empties the whole server's
//! script cache, and would fail the scripts of tests running beside it.

mod common;

use common::*;
use domain::StockCounts;
use domain::contracts::{Settlement, StockStore};

#[tokio::test]
async fn scripts_come_back_after_redis_forgets_them() {
    let store = redis().await;
    let category = category(&*store, 10, None).await;
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut raw().await)
        .await
        .unwrap();

    let reservation = held(&*store, &category, "ann", 1).await;
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut raw().await)
        .await
        .unwrap();
    settle(&*store, reservation.id, "ann", Settlement::Cancel)
        .await
        .unwrap();
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut raw().await)
        .await
        .unwrap();
    store.expire_due(now(), 10).await.unwrap();

    assert_eq!(counts(&*store, &category).await, StockCounts::new(10));
}
