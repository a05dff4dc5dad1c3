//! Rebuilding a category Redis lost or broke, from the reservations PostgreSQL stored
//! (reconcile). The caller first brings PostgreSQL up to date (see the runtime's reconcile).

use super::keys::CategoryKeys;
use super::{RedisStockStore, parse_counters};
use domain::error::StoreError;
use domain::{Category, Reservation, ReservationStatus};

/// What Redis has of a category's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockState {
    /// Counters present, readable and consistent.
    Sound,
    /// No counters at all: never added here, or lost.
    Missing,
    /// Counters that cannot be read or break `available + held + sold == total`.
    Broken,
}

impl RedisStockStore {
    pub async fn stock_state(&self, category: &Category) -> Result<StockState, StoreError> {
        let keys = CategoryKeys::new(category.event_id, category.name.as_str());
        let fields: [Option<String>; 4] = self
            .query(redis::cmd("HMGET").arg(&keys.stock).arg(&[
                "total",
                "available",
                "held",
                "sold",
            ]))
            .await?;
        Ok(match parse_counters(&fields) {
            Some(counts) if counts.is_consistent() => StockState::Sound,
            _ if fields.iter().all(Option::is_none) => StockState::Missing,
            _ => StockState::Broken,
        })
    }

    /// Rebuilds the category's counters and live holds from `reservations` (all of its
    /// stored reservations) if its stock is missing, or also if broken when `replace`;
    /// `Ok(false)` if it was there and nothing changed. Finished holds stay in PostgreSQL,
    /// where every answer about them comes from; Idempotency-Keys do not come back.
    pub async fn restore_category(
        &self,
        category: &Category,
        reservations: &[Reservation],
        replace: bool,
    ) -> Result<bool, StoreError> {
        let keys = CategoryKeys::new(category.event_id, category.name.as_str());
        let shard = keys.shard_keys;
        let mut invocation = self.scripts.restore.prepare_invoke();
        invocation
            .key(&keys.stock)
            .key(&keys.deadlines)
            .key(&keys.users)
            .key(&shard.holds)
            .key(&shard.due)
            .key(&shard.touched)
            .arg(&keys.member)
            .arg(category.total_stock.get())
            .arg(category.max_per_user.map_or(0, |limit| limit.get()))
            .arg(u8::from(replace));
        let counted = reservations.iter().filter(|reservation| {
            matches!(
                reservation.status,
                ReservationStatus::Held | ReservationStatus::Confirmed
            )
        });
        let mut live = 0;
        for reservation in counted {
            live += usize::from(reservation.status == ReservationStatus::Held);
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
        if restored {
            tracing::warn!(category = %keys.member, live_holds = live,
                "category rebuilt from the reservation store");
        }
        Ok(restored)
    }
}
