//! Readiness: PostgreSQL answers `SELECT 1` on a pooled connection.

use async_trait::async_trait;
use domain::dependency::Dependency;
use domain::error::StoreError;

use super::{Postgres, describe};

#[async_trait]
impl Dependency for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.simple_query("SELECT 1")
            .await
            .map_err(|err| describe("postgres ping", &err))?;
        Ok(())
    }
}
