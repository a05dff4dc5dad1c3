//! Timer-triggered: admits fans from each event's waiting room. The store keeps the pace
//! (shared by every process), this function the bounds of the stock: no more admitted,
//! unexpired fans than `ADMITTED_PER_TICKET` per available ticket, none while nothing is
//! available, and once every category is sold out with no hold left that could return,
//! the room is marked sold out so every waiting fan hears it at once.

use domain::Context;
use domain::error::StoreError;
use domain::waiting_room::{ADMITTED_PER_TICKET, AdmitBudget};
use domain::{CategoryName, EventId};
use telemetry::{WAITING_ROOM_ADMITTED, WAITING_ROOM_QUEUED, WAITING_ROOM_WAIT};

/// Runs one admit round in every room; returns how many fans it admitted.
pub async fn admit_fans(ctx: &Context) -> Result<usize, StoreError> {
    let mut admitted = 0;
    for event in ctx.waiting_room.rooms().await? {
        admitted += admit_in(ctx, event).await?;
    }
    Ok(admitted)
}

async fn admit_in(ctx: &Context, event: EventId) -> Result<usize, StoreError> {
    let names: Vec<CategoryName> = ctx
        .catalogue
        .categories(event)
        .await?
        .into_iter()
        .map(|category| category.name)
        .collect();
    let counts = ctx.stock.counts(event, &names).await?;
    let available: u64 = counts.iter().map(|(_, c)| u64::from(c.available)).sum();
    let held: u64 = counts.iter().map(|(_, c)| u64::from(c.held)).sum();
    let budget = AdmitBudget {
        max_admitted: available * u64::from(ADMITTED_PER_TICKET),
        // An event with nothing on sale yet is not sold out: its fans wait.
        sold_out: !counts.is_empty() && available == 0 && held == 0,
    };
    let round = ctx
        .waiting_room
        .admit(event, budget, ctx.clock.now())
        .await?;
    WAITING_ROOM_QUEUED
        .with_label_values(&[&event.to_string()])
        .set(i64::try_from(round.queued).unwrap_or(i64::MAX));
    for wait in &round.waits {
        WAITING_ROOM_WAIT.observe(*wait);
    }
    WAITING_ROOM_ADMITTED.inc_by(round.waits.len() as u64);
    if !round.waits.is_empty() {
        tracing::debug!(%event, admitted = round.waits.len(), queued = round.queued, "fans admitted");
    }
    Ok(round.waits.len())
}
