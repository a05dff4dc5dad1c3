//! Readiness: Redis answers a PING.

use async_trait::async_trait;
use domain::dependency::Dependency;
use domain::error::StoreError;

use super::RedisStockStore;

#[async_trait]
impl Dependency for RedisStockStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
