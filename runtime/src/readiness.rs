//! What `GET /ready` asks of the process: whether shutdown has begun, and the services it
//! needs, each given a bounded time to answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use domain::dependency::Dependency;
use domain::error::StoreError;

/// A service that takes longer than this to answer a ping counts as down: a pool waiting
/// for a connection to a stopped Redis would otherwise hold /ready for its full timeout.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Readiness {
    stopping: AtomicBool,
    dependencies: Vec<Arc<dyn Dependency>>,
}

impl Readiness {
    pub fn new(dependencies: Vec<Arc<dyn Dependency>>) -> Self {
        let dependencies = dependencies
            .into_iter()
            .map(|inner| Arc::new(Bounded(inner)) as Arc<dyn Dependency>)
            .collect();
        Self {
            stopping: AtomicBool::new(false),
            dependencies,
        }
    }

    /// From now on the process is not ready: it is shutting down.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub fn input(&self) -> ready::ReadyInput {
        ready::ReadyInput {
            shutting_down: self.stopping.load(Ordering::Relaxed),
            dependencies: self.dependencies.clone(),
        }
    }
}

struct Bounded(Arc<dyn Dependency>);

#[async_trait]
impl Dependency for Bounded {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        tokio::time::timeout(PING_TIMEOUT, self.0.ping())
            .await
            .map_err(|_| StoreError(format!("no answer within {PING_TIMEOUT:?}")))?
    }
}
