//! Runs a timer-triggered function on a fixed tick until told to stop.

use std::time::Duration;

use domain::Context;
use domain::error::StoreError;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Well inside the promise that holds expire within a second of their deadline.
pub const EXPIRE_HOLDS_EVERY: Duration = Duration::from_millis(250);
/// Sold out reaches every waiting fan within a second (with the streams' own poll).
pub const ADMIT_FANS_EVERY: Duration = Duration::from_millis(250);
/// Finished holds wait out a retention of minutes: a few seconds late costs nothing.
pub const FORGET_FINISHED_HOLDS_EVERY: Duration = Duration::from_secs(5);

/// Calls `function` every `every`; a failure is logged and the next tick retries.
pub async fn run_every(
    name: &'static str,
    every: Duration,
    ctx: Context,
    function: impl AsyncFn(&Context) -> Result<usize, StoreError>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(err) = function(&ctx).await {
                    tracing::warn!(%err, function = name, "timer function failed; next tick retries");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
