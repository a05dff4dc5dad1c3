use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use super::sharded::ShardedMap;
use domain::contracts::ReservationStore;
use domain::error::StoreError;
use domain::{Reservation, ReservationEvent, ReservationId, ReservationStatus};

/// The persisted reservations of the embedded stack (PostgreSQL's role on the real one).
#[derive(Default)]
pub struct MemoryReservationStore {
    rows: Mutex<ShardedMap<ReservationId, Reservation>>,
}

impl MemoryReservationStore {
    /// Every stored reservation, for tests and checks.
    pub fn all(&self) -> Vec<Reservation> {
        lock(&self.rows).values().cloned().collect()
    }
}

#[async_trait]
impl ReservationStore for MemoryReservationStore {
    async fn apply(&self, events: &[ReservationEvent]) -> Result<(), StoreError> {
        let mut rows = lock(&self.rows);
        for event in events {
            let incoming = &event.reservation;
            match rows.get_mut(&incoming.id) {
                // Only a move out of `held` is news; anything else is a redelivery.
                Some(row) if row.status.is_final() || !incoming.status.is_final() => {}
                Some(row) => *row = incoming.clone(),
                None => {
                    rows.insert(incoming.id, incoming.clone());
                }
            }
        }
        Ok(())
    }

    async fn get(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        Ok(lock(&self.rows).get(&id).cloned())
    }

    async fn statuses(
        &self,
        ids: &[ReservationId],
    ) -> Result<Vec<(ReservationId, ReservationStatus)>, StoreError> {
        let rows = lock(&self.rows);
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, rows.get(id)?.status)))
            .collect())
    }
}
