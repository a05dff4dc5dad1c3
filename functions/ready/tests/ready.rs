use std::sync::Arc;

use async_trait::async_trait;
use domain::dependency::Dependency;
use domain::error::StoreError;
use domain::{ApiError, ErrorKind};
use ready::{NotReady, ReadyInput, ready};

struct Service {
    name: &'static str,
    up: bool,
}

#[async_trait]
impl Dependency for Service {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self.up {
            true => Ok(()),
            false => Err(StoreError("connection refused".into())),
        }
    }
}

/// Redis (up or down) and PostgreSQL (up), in a process that is stopping or not.
fn input(shutting_down: bool, redis_up: bool) -> ReadyInput {
    let dependencies: Vec<Arc<dyn Dependency>> = vec![
        Arc::new(Service {
            name: "redis",
            up: redis_up,
        }),
        Arc::new(Service {
            name: "postgres",
            up: true,
        }),
    ];
    ReadyInput {
        shutting_down,
        dependencies,
    }
}

#[tokio::test]
async fn ready_when_every_service_answers() {
    let answer = ready(input(false, true)).await.unwrap();
    assert_eq!(answer.dependencies, ["redis", "postgres"]);
}

#[tokio::test]
async fn embedded_adapters_are_always_ready() {
    let input = ReadyInput {
        shutting_down: false,
        dependencies: Vec::new(),
    };
    assert_eq!(ready(input).await.unwrap().status, "ready");
}

#[tokio::test]
async fn not_ready_while_a_service_is_down() {
    let err = ready(input(false, false)).await.unwrap_err();
    assert_eq!(err, NotReady::DependencyDown("redis"));
    let err = ApiError::from(err);
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.code, "dependency_unavailable");
    assert!(err.retry_after.is_some());
}

#[tokio::test]
async fn not_ready_once_shutdown_began() {
    let err = ApiError::from(ready(input(true, true)).await.unwrap_err());
    assert_eq!(err.code, "shutting_down");
    assert!(err.retry_after.is_some());
}
