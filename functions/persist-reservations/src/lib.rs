//! Stream-triggered: writes every reservation state change to the reservation store.
//! Writes are idempotent upserts, so a redelivered batch changes nothing.

use domain::Context;
use domain::ReservationEvent;
use domain::error::StoreError;
use telemetry::{EVENTS_PERSISTED, PERSIST_BATCH_SIZE, PERSIST_DURATION};

/// Stores a batch of events; the trigger acknowledges the batch only after this succeeds.
pub async fn persist_reservations(
    ctx: &Context,
    events: &[ReservationEvent],
) -> Result<(), StoreError> {
    let (known, unknown): (Vec<_>, Vec<_>) = events
        .iter()
        .cloned()
        .partition(|event| event.version == ReservationEvent::VERSION);
    if !unknown.is_empty() {
        // A newer producer: skipping is safe only because the stock store stays authoritative.
        tracing::warn!(
            count = unknown.len(),
            "skipped events of an unknown version"
        );
    }
    let started = std::time::Instant::now();
    ctx.reservations.apply(&known).await?;
    PERSIST_DURATION.observe(started.elapsed().as_secs_f64());
    PERSIST_BATCH_SIZE.observe(known.len() as f64);
    EVENTS_PERSISTED.inc_by(known.len() as u64);
    Ok(())
}
