//! On the Redis Cluster, a change is answered only once its master's replica has it. Its own
//! test binary: it freezes the cluster's replicas (test binaries run one after another).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{TEN_MINUTES, category, cluster, counts, hold};
use domain::contracts::{ReserveError, StockStore};

/// The process ids of the cluster's replicas.
async fn replica_pids() -> Vec<String> {
    let mut pids = Vec::new();
    for port in 7000..7006 {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut node = client.get_multiplexed_async_connection().await.unwrap();
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut node).await.unwrap();
        if !matches!(role.first(), Some(redis::Value::BulkString(kind)) if kind == b"slave") {
            continue;
        }
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut node)
            .await
            .unwrap();
        let pid = info
            .lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .unwrap();
        pids.push(pid.trim().to_owned());
    }
    pids
}

fn signal(signal: &str, pids: &[String]) {
    let status = Command::new("kill")
        .arg(signal)
        .args(pids)
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pids:?}");
}

/// Continues frozen processes even when the test fails, so the cluster stays whole.
struct Thaw(Vec<String>);

impl Drop for Thaw {
    fn drop(&mut self) {
        signal("-CONT", &self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_answered_only_once_a_replica_has_it() {
    // `cluster()` waits up to 2 s for a replica.
    let store = cluster().await;
    let category = category(&*store, 10, None).await;
    store
        .reserve(hold(&category, "ann", 1, TEN_MINUTES))
        .await
        .expect("replicas answer");

    let replicas = replica_pids().await;
    assert_eq!(replicas.len(), 3, "the cluster has three replicas");
    // Frozen for less than cluster-node-timeout (2 s), so no failover starts.
    signal("-STOP", &replicas);
    let thaw = Thaw(replicas);
    let started = Instant::now();
    let frozen = tokio::time::timeout(
        Duration::from_secs(5),
        store.reserve(hold(&category, "bob", 1, TEN_MINUTES)),
    )
    .await
    .expect("the wait is bounded");
    let waited = started.elapsed();
    drop(thaw);
    assert!(
        matches!(frozen, Err(ReserveError::Store(_))),
        "answered with no replica confirming: {frozen:?}"
    );
    assert!(waited >= Duration::from_secs(2), "waited only {waited:?}");

    // The refused change may stand (a retry with its Idempotency-Key would return it); the
    // stock stays whole either way, and changes are answered again once replicas are back.
    let after = tokio::time::timeout(
        Duration::from_secs(10),
        store.reserve(hold(&category, "cy", 1, TEN_MINUTES)),
    )
    .await
    .expect("answered once the replicas are back");
    assert!(after.is_ok(), "{after:?}");
    let counts = counts(&*store, &category).await;
    assert!(counts.held == 2 || counts.held == 3, "{counts:?}");
}
