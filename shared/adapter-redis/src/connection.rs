//! The connection every request shares, so concurrent commands are pipelined on it: to one
//! Redis server, one multiplexed connection that bb8 opens and validates and that a new one
//! replaces after a connection error; to a Redis Cluster, redis-rs's cluster connection,
//! multiplexed per node, which follows MOVED/ASK and topology changes by itself.

use std::sync::Mutex;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::Pool;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use domain::error::StoreError;

/// How long a command may wait for its reply. redis-rs's default, 500 ms, fails requests
/// whenever a busy machine or a burst of thousands of pipelined commands delays a reply,
/// though Redis did the work; the request timeout (10 s by default) bounds the wait anyway.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the stock lives.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: `redis://host:port/db` (may carry a password).
    Server(String),
    /// A cluster, by seed nodes (`host:port`); it finds the others itself.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// The setting that names this target, for error messages.
    pub fn setting(&self) -> &'static str {
        match self {
            Self::Server(_) => "REDIS_URL",
            Self::Cluster(_) => "REDIS_CLUSTER_NODES",
        }
    }
}

/// A server URL may carry a password: never printed.
impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server(_) => f.write_str("Server(redacted)"),
            Self::Cluster(nodes) => f.debug_tuple("Cluster").field(nodes).finish(),
        }
    }
}

/// A connection to either kind of target; cheap to clone.
#[derive(Clone)]
pub enum Connection {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

pub enum Connections {
    Server {
        pool: Pool<RedisConnectionManager>,
        shared: Mutex<Option<MultiplexedConnection>>,
    },
    Cluster(ClusterConnection),
}

impl Connections {
    pub async fn open(target: &RedisTarget) -> Result<Self, StoreError> {
        let connections = match target {
            RedisTarget::Server(url) => {
                let manager = RedisConnectionManager::new(url.as_str())
                    .map_err(|err| StoreError(format!("redis url: {err}")))?;
                let pool = Pool::builder()
                    .max_size(4)
                    .build(manager)
                    .await
                    .map_err(|err| StoreError(format!("redis: {err}")))?;
                Self::Server {
                    pool,
                    shared: Mutex::new(None),
                }
            }
            RedisTarget::Cluster(nodes) => {
                let urls = nodes.iter().map(|node| format!("redis://{node}"));
                let connection = ClusterClient::builder(urls)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .build()
                    .map_err(|err| StoreError(format!("redis cluster: {err}")))?
                    .get_async_connection()
                    .await
                    .map_err(|err| StoreError(format!("redis cluster: {err}")))?;
                Self::Cluster(connection)
            }
        };
        connections.get().await?;
        Ok(connections)
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// The shared connection (a cheap clone), opening one if there is none.
    pub async fn get(&self) -> Result<Connection, StoreError> {
        let (pool, shared) = match self {
            Self::Cluster(connection) => return Ok(Connection::Cluster(connection.clone())),
            Self::Server { pool, shared } => (pool, shared),
        };
        if let Some(connection) = lock(shared).clone() {
            return Ok(Connection::Server(connection));
        }
        let mut fresh = pool
            .get()
            .await
            .map_err(|err| StoreError(format!("redis: {err}")))?
            .clone();
        fresh.set_response_timeout(RESPONSE_TIMEOUT);
        *lock(shared) = Some(fresh.clone());
        Ok(Connection::Server(fresh))
    }

    /// Turns a Redis error into a `StoreError`, dropping the shared server connection if it
    /// broke (the cluster connection reconnects by itself).
    pub fn failed(&self, err: RedisError) -> StoreError {
        if let Self::Server { shared, .. } = self
            && (err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal())
        {
            *lock(shared) = None;
        }
        StoreError(format!("redis: {err}"))
    }
}

fn lock(
    shared: &Mutex<Option<MultiplexedConnection>>,
) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
    shared.lock().unwrap_or_else(|poison| poison.into_inner())
}
