//! `GET /ready`: whether a load balancer should send this process traffic. Not while it is
//! shutting down, and not while a service it needs (Redis, PostgreSQL) does not answer.
//! `/health` stays the liveness check: a process that is not ready is still alive.

use std::sync::Arc;

use domain::ApiError;
use domain::ErrorKind;
use domain::dependency::Dependency;
use serde::Serialize;

/// How long a client should wait before asking again, in seconds.
pub const RETRY_AFTER_SECS: u32 = 5;

pub struct ReadyInput {
    /// Shutdown has begun: in-flight requests finish, new traffic should go elsewhere.
    pub shutting_down: bool,
    /// The services to ping; none on the embedded adapters.
    pub dependencies: Vec<Arc<dyn Dependency>>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Ready {
    pub status: &'static str,
    /// The services that answered.
    pub dependencies: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotReady {
    #[error("shutting down")]
    ShuttingDown,
    #[error("{0} does not answer")]
    DependencyDown(&'static str),
}

impl From<NotReady> for ApiError {
    fn from(err: NotReady) -> Self {
        let code = match err {
            NotReady::ShuttingDown => "shutting_down",
            NotReady::DependencyDown(_) => "dependency_unavailable",
        };
        ApiError::new(ErrorKind::Unavailable, code, err.to_string()).retry_after(RETRY_AFTER_SECS)
    }
}

pub async fn ready(input: ReadyInput) -> Result<Ready, NotReady> {
    if input.shutting_down {
        return Err(NotReady::ShuttingDown);
    }
    let mut answered = Vec::with_capacity(input.dependencies.len());
    for dependency in &input.dependencies {
        if let Err(err) = dependency.ping().await {
            tracing::warn!(dependency = dependency.name(), %err, "not ready");
            return Err(NotReady::DependencyDown(dependency.name()));
        }
        answered.push(dependency.name());
    }
    Ok(Ready {
        status: "ready",
        dependencies: answered,
    })
}
