//! Timer-triggered: a hold that ended (confirmed, cancelled, expired) leaves the stock store
//! once the reservation store has stored it in that state and `finished_hold_retention` has
//! passed, so the stock store's size follows the live holds, not the sale's history. Every
//! answer about a forgotten hold then comes, unchanged, from the reservation store.

use domain::Context;
use domain::error::StoreError;

/// Holds looked at per store call.
pub const BATCH: usize = 1024;

/// Forgets every finished hold past its retention that the reservation store has; returns
/// how many. One not stored yet (the persist function is behind) stays for a later run.
pub async fn forget_finished_holds(ctx: &Context) -> Result<usize, StoreError> {
    let now = ctx.clock.now();
    let mut forgotten = 0;
    loop {
        let finished = ctx
            .stock
            .finished_holds(now, ctx.finished_hold_retention, BATCH)
            .await?;
        let ids: Vec<_> = finished.iter().map(|(id, _)| *id).collect();
        let stored = ctx.reservations.statuses(&ids).await?;
        let safe: Vec<_> = finished
            .iter()
            .filter(|hold| stored.contains(hold))
            .map(|(id, _)| *id)
            .collect();
        if safe.is_empty() {
            break;
        }
        forgotten += ctx.stock.forget_holds(&safe).await?;
        if finished.len() < BATCH {
            break;
        }
    }
    if forgotten > 0 {
        tracing::debug!(forgotten, "finished holds forgotten");
    }
    Ok(forgotten)
}
