//! Stream-triggered: writes every reservation state change to the reservation store.
//! Writes are idempotent upserts, so a redelivered batch changes nothing. The stream hands
//! over only events of a version this build reads: one it cannot read stops its partition
//! there (see the Kafka source), it is never skipped.

use domain::Context;
use domain::ReservationEvent;
use domain::error::StoreError;
use telemetry::{EVENTS_PERSISTED, PERSIST_BATCH_SIZE, PERSIST_DURATION};

/// Stores a batch of events; the trigger acknowledges the batch only after this succeeds.
pub async fn persist_reservations(
    ctx: &Context,
    events: &[ReservationEvent],
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    ctx.reservations.apply(events).await?;
    PERSIST_DURATION.observe(started.elapsed().as_secs_f64());
    PERSIST_BATCH_SIZE.observe(events.len() as f64);
    EVENTS_PERSISTED.inc_by(events.len() as u64);
    Ok(())
}
