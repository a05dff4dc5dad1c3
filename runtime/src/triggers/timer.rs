//! Runs expire-holds on a fixed tick until told to stop.

use std::time::Duration;

use domain::Context;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Well inside the promise that holds expire within a second of their deadline.
const EVERY: Duration = Duration::from_millis(250);

pub async fn run_expire_holds(ctx: Context, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(err) = expire_holds::expire_holds(&ctx).await {
                    tracing::warn!(%err, "expire-holds failed; next tick retries");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
