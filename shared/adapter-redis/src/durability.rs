//! Answering a change only once replicas have it: Redis replicates asynchronously, so a master
//! that dies takes its last writes with it unless a replica had them.
//!
//! After a change, the caller waits on its shard: a write to the shard's `fence` key, then
//! `WAIT`. `WAIT` counts the caller's own writes, and the fence is written after the change,
//! so the wait covers the change (and every earlier write of the shard, whoever made it).
//! Callers of one shard share one wait at a time (a group commit), on a connection of their
//! own, since `WAIT` blocks the connection it runs on.
//!
//! A change waits for every replica its master has, up to the number asked for: a master
//! left without replicas (its replica died, or was promoted when the master failed) goes on
//! rather than refusing every change, since no failover can then lose what it wrote.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use redis::Value;

use super::connection::{Connections, RedisTarget};
use super::keys::{SHARDS, Shard};
use domain::error::StoreError;

/// How many replicas must have a change before it is answered, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAcks {
    pub replicas: u32,
    pub timeout_ms: u64,
}

pub struct Durability {
    acks: ReplicaAcks,
    connections: Connections,
    shards: Vec<ShardWaits>,
}

#[derive(Default)]
struct ShardWaits {
    /// Changes that asked to be confirmed, counted.
    asked: AtomicU64,
    /// Changes confirmed so far; held while a wait runs, so one runs at a time.
    confirmed: tokio::sync::Mutex<u64>,
    /// Replicas the shard's master had at the last wait, at most `acks.replicas`.
    replicas: AtomicU32,
}

impl Durability {
    pub async fn open(target: &RedisTarget, acks: ReplicaAcks) -> Result<Self, StoreError> {
        // `WAIT n 0` would wait forever.
        let acks = ReplicaAcks {
            timeout_ms: acks.timeout_ms.max(1),
            ..acks
        };
        let shards = (0..SHARDS)
            .map(|_| ShardWaits {
                replicas: AtomicU32::new(acks.replicas),
                ..ShardWaits::default()
            })
            .collect();
        Ok(Self {
            acks,
            connections: Connections::open(target).await?,
            shards,
        })
    }

    /// Returns once the shard's replicas have every change the shard had when it was called;
    /// an error (answered 503: the change may stand, a retry is safe) if they did not in time.
    pub async fn confirm(&self, shard: Shard) -> Result<(), StoreError> {
        let waits = &self.shards[usize::from(shard.route())];
        let ticket = waits.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut confirmed = waits.confirmed.lock().await;
        if *confirmed >= ticket {
            return Ok(());
        }
        // Every change asked so far is in Redis already: this wait covers them all.
        let covers = waits.asked.load(Ordering::SeqCst);
        // A master that just got a replica back is waited for again at once.
        for _ in 0..2 {
            let want = waits.replicas.load(Ordering::SeqCst);
            let (replicas, acked) = self.wait(shard, want).await?;
            let needed = replicas.min(self.acks.replicas);
            waits.replicas.store(needed, Ordering::SeqCst);
            if acked >= needed {
                *confirmed = covers;
                return Ok(());
            }
            if want >= needed {
                break;
            }
        }
        Err(StoreError(format!(
            "redis: the replicas did not have the change within {} ms",
            self.acks.timeout_ms
        )))
    }

    /// One fence and wait on the shard's master: how many replicas it has, and how many
    /// acknowledged.
    async fn wait(&self, shard: Shard, want: u32) -> Result<(u32, u32), StoreError> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("INCR")
            .arg(&shard.keys().fence)
            .ignore()
            .cmd("ROLE")
            .cmd("WAIT")
            .arg(want)
            .arg(self.acks.timeout_ms);
        let mut connection = self.connections.get().await?;
        let (role, acked): (Vec<Value>, u32) = pipeline
            .query_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))?;
        // A master's ROLE: "master", its offset, then one entry per connected replica.
        let replicas = match role.as_slice() {
            [Value::BulkString(kind), _, Value::Array(replicas)] if kind == b"master" => {
                u32::try_from(replicas.len()).unwrap_or(u32::MAX)
            }
            _ => return Err(StoreError(format!("redis: unexpected ROLE {role:?}"))),
        };
        Ok((replicas, acked))
    }
}
