//! A service the process needs in order to serve (Redis, PostgreSQL): `GET /ready` asks each
//! for one cheap round trip. The embedded adapters have none, so they are always ready.

use async_trait::async_trait;

use crate::error::StoreError;

#[async_trait]
pub trait Dependency: Send + Sync {
    /// The name readiness reports ("redis", "postgres").
    fn name(&self) -> &'static str;
    /// One cheap round trip; an error means the service does not answer now.
    async fn ping(&self) -> Result<(), StoreError>;
}
