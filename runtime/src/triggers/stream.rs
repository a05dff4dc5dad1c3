//! Feeds the reservation stream to persist-reservations in batches, acknowledging each batch
//! only once it is stored. On stop it stores what was already received, then returns.

use std::time::Duration;

use domain::Context;
use domain::ReservationEvent;
use domain::contracts::EventSource;
use telemetry::PERSIST_RETRYING;
use tokio::sync::watch;

const BATCH: usize = 500;
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// How often the consumer lag gauge is refreshed.
const LAG_EVERY: Duration = Duration::from_secs(2);

pub async fn run_persist_reservations(
    ctx: Context,
    mut source: Box<dyn EventSource>,
    mut stop: watch::Receiver<bool>,
) {
    let mut lag_ticks = tokio::time::interval(LAG_EVERY);
    loop {
        let batch = tokio::select! {
            batch = source.next_batch(BATCH) => batch,
            _ = lag_ticks.tick() => {
                if let Err(err) = source.report_lag().await {
                    tracing::debug!(%err, "consumer lag");
                }
                continue;
            }
            _ = stop.changed() => break,
        };
        match batch {
            Ok(Some(batch)) => persist(&ctx, &mut *source, &batch).await,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%err, "reading the reservation stream failed");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
    source.close();
    while let Ok(Some(batch)) = source.next_batch(BATCH).await {
        persist(&ctx, &mut *source, &batch).await;
    }
}

/// Stores `batch`, retrying until it is stored: an unstored event is never acknowledged,
/// and `persist_retrying` says so while it lasts (an alert watches it).
async fn persist(ctx: &Context, source: &mut dyn EventSource, batch: &[ReservationEvent]) {
    while let Err(err) = persist_reservations::persist_reservations(ctx, batch).await {
        PERSIST_RETRYING.set(1);
        tracing::warn!(%err, events = batch.len(), "persisting failed; retrying");
        tokio::time::sleep(RETRY_AFTER).await;
    }
    PERSIST_RETRYING.set(0);
    if let Err(err) = source.commit().await {
        // The batch is stored; redelivery after this failure is harmless (upserts).
        tracing::warn!(%err, "acknowledging a stored batch failed");
    }
}
