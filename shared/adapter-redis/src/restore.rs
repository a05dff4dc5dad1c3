//! Rebuilding a category Redis lost, from the reservations PostgreSQL stored (reconcile).

use super::RedisStockStore;
use super::keys::{
    CATEGORIES, CategoryKeys, category_member, event_categories, reservation_category,
};
use domain::error::StoreError;
use domain::{Category, Reservation, ReservationStatus};

impl RedisStockStore {
    /// Whether Redis has the category's stock.
    pub async fn has_category(&self, category: &Category) -> Result<bool, StoreError> {
        let keys = CategoryKeys::new(category.event_id, category.name.as_str());
        self.query(redis::cmd("EXISTS").arg(&keys.stock)).await
    }

    /// Rebuilds the category's counters and holds from `reservations` (all of its stored
    /// reservations) if Redis does not have it; `Ok(false)` if it had it and nothing changed.
    /// Idempotency keys are not stored elsewhere and do not come back.
    pub async fn restore_category(
        &self,
        category: &Category,
        reservations: &[Reservation],
    ) -> Result<bool, StoreError> {
        let keys = CategoryKeys::new(category.event_id, category.name.as_str());
        let mut invocation = self.scripts.restore.prepare_invoke();
        invocation
            .key(&keys.stock)
            .key(&keys.holds)
            .key(&keys.deadlines)
            .key(&keys.users)
            .arg(category.total_stock.get())
            .arg(category.max_per_user.map_or(0, |limit| limit.get()));
        for reservation in reservations {
            let json = serde_json::to_string(reservation)
                .map_err(|err| StoreError(format!("reservation JSON: {err}")))?;
            invocation
                .arg(reservation.id.to_string())
                .arg(json)
                .arg(reservation.status.as_str())
                .arg(reservation.qty.get())
                .arg(reservation.user_id.as_str())
                .arg(reservation.expires_at.timestamp_millis());
        }
        let mut connection = self.connections.get().await?;
        let restored: bool = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))?;

        let member = category_member(category.event_id, &category.name);
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SADD")
            .arg(CATEGORIES)
            .arg(&member)
            .ignore()
            .cmd("SADD")
            .arg(event_categories(category.event_id))
            .arg(category.name.as_str())
            .ignore();
        if restored {
            for reservation in reservations {
                pipeline
                    .cmd("SET")
                    .arg(reservation_category(reservation.id))
                    .arg(&member)
                    .ignore();
            }
        }
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))?;
        let live = reservations
            .iter()
            .filter(|reservation| reservation.status == ReservationStatus::Held)
            .count();
        if restored {
            tracing::info!(category = %member, live_holds = live, "category restored from the reservation store");
        }
        Ok(restored)
    }
}
