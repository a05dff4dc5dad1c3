//! Timer-triggered: every hold past its deadline becomes `expired` and its stock returns.
//! The store expires each hold in one atomic step, so overlapping runs (or processes) never
//! release the same hold twice.

use domain::Context;
use domain::error::StoreError;
use telemetry::HOLD_OUTCOMES;

/// Holds expired per store call, so one call never holds the store for long.
pub const BATCH: usize = 512;

/// Expires every hold whose deadline has passed; returns how many.
pub async fn expire_holds(ctx: &Context) -> Result<usize, StoreError> {
    let now = ctx.clock.now();
    let mut expired = 0;
    loop {
        let count = ctx.stock.expire_due(now, BATCH).await?;
        expired += count;
        if count < BATCH {
            break;
        }
    }
    if expired > 0 {
        HOLD_OUTCOMES
            .with_label_values(&["expired"])
            .inc_by(expired as u64);
        tracing::debug!(expired, "holds expired");
    }
    Ok(expired)
}
