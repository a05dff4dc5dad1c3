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
/// While catching up at stop, how long to wait for events before asking again if all are read.
const CATCH_UP_POLL: Duration = Duration::from_millis(200);
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
    catch_up(&ctx, &mut *source).await;
    source.close();
    while let Ok(Some(batch)) = source.next_batch(BATCH).await {
        persist(&ctx, &mut *source, &batch).await;
    }
}

/// Stopping, after the relay flushed the outbox: reads on until the source has nothing more,
/// so every change a client was answered is stored before the process exits. The runtime
/// bounds how long (SHUTDOWN_FLUSH_TIMEOUT).
async fn catch_up(ctx: &Context, source: &mut dyn EventSource) {
    loop {
        match source.caught_up().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, "stopping: cannot tell whether the stream is read"),
        }
        // Cancel-safe: an event taken from the stream waits in the source for the next call.
        match tokio::time::timeout(CATCH_UP_POLL, source.next_batch(BATCH)).await {
            Ok(Ok(Some(batch))) => persist(ctx, source, &batch).await,
            Ok(Ok(None)) => return,
            Ok(Err(err)) => {
                tracing::warn!(%err, "reading the reservation stream failed");
                tokio::time::sleep(RETRY_AFTER).await;
            }
            Err(_) => {}
        }
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
