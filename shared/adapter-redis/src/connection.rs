//! One multiplexed connection shared by every request, so concurrent commands are pipelined
//! on it; bb8 opens and validates it, and a new one replaces it after a connection error.

use std::sync::Mutex;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::Pool;
use bb8_redis::redis::RedisError;
use bb8_redis::redis::aio::MultiplexedConnection;

use domain::error::StoreError;

/// How long a command may wait for its reply. redis-rs's default, 500 ms, fails requests
/// whenever a busy machine or a burst of thousands of pipelined commands delays a reply,
/// though Redis did the work; the request timeout (10 s by default) bounds the wait anyway.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Connections {
    pool: Pool<RedisConnectionManager>,
    shared: Mutex<Option<MultiplexedConnection>>,
}

impl Connections {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let manager = RedisConnectionManager::new(url)
            .map_err(|err| StoreError(format!("redis url: {err}")))?;
        let pool = Pool::builder()
            .max_size(4)
            .build(manager)
            .await
            .map_err(|err| StoreError(format!("redis: {err}")))?;
        let connections = Self {
            pool,
            shared: Mutex::new(None),
        };
        connections.get().await?;
        Ok(connections)
    }

    /// The shared connection (a cheap clone), opening one if there is none.
    pub async fn get(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(connection) = self.lock().clone() {
            return Ok(connection);
        }
        let mut fresh = self
            .pool
            .get()
            .await
            .map_err(|err| StoreError(format!("redis: {err}")))?
            .clone();
        fresh.set_response_timeout(RESPONSE_TIMEOUT);
        *self.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    /// Turns a Redis error into a `StoreError`, dropping the shared connection if it broke.
    pub fn failed(&self, err: RedisError) -> StoreError {
        if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() {
            *self.lock() = None;
        }
        StoreError(format!("redis: {err}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.shared
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
