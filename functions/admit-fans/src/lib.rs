//! Timer-triggered: admits fans from each event's waiting room. The store keeps the pace
//! (shared by every process), this function the bounds of the stock: no more admitted,
//! unexpired fans than `ADMITTED_PER_TICKET` per available ticket, none while nothing is
//! available, and once every category is sold out with no hold left that could return,
//! the room is marked sold out so every waiting fan hears it at once.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use domain::Context;
use domain::error::StoreError;
use domain::waiting_room::{ADMITTED_PER_TICKET, AdmitBudget};
use domain::{CategoryName, EventId};
use telemetry::{WAITING_ROOM_ADMITTED, WAITING_ROOM_OPEN, WAITING_ROOM_QUEUED, WAITING_ROOM_WAIT};

/// The rooms this process reports metrics of. A room turned off drops out of them: a queue
/// that no longer exists must not stay on the dashboard, or look stalled to an alert.
static REPORTED: LazyLock<Mutex<HashSet<EventId>>> = LazyLock::new(Mutex::default);

/// Runs one admit round in every room; returns how many fans it admitted.
pub async fn admit_fans(ctx: &Context) -> Result<usize, StoreError> {
    let rooms = ctx.waiting_room.rooms().await?;
    forget_rooms_gone(&rooms);
    let mut admitted = 0;
    for event in rooms {
        admitted += admit_in(ctx, event).await?;
    }
    Ok(admitted)
}

fn forget_rooms_gone(rooms: &[EventId]) {
    let mut reported = REPORTED.lock().unwrap_or_else(|poison| poison.into_inner());
    reported.retain(|event| {
        let on = rooms.contains(event);
        if !on {
            let label = event.to_string();
            let label = [label.as_str()];
            // An error only says this process never reported that series.
            let _ = WAITING_ROOM_QUEUED.remove_label_values(&label);
            let _ = WAITING_ROOM_OPEN.remove_label_values(&label);
            let _ = WAITING_ROOM_ADMITTED.remove_label_values(&label);
        }
        on
    });
    reported.extend(rooms.iter().copied());
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
    let now = ctx.clock.now();
    let round = ctx.waiting_room.admit(event, budget, now).await?;
    // Remembered for a second (`CachedWaitingRoom`): no store call each round.
    let open = ctx
        .waiting_room
        .settings(event)
        .await?
        .is_some_and(|settings| settings.is_open(now));
    let label = event.to_string();
    let label = [label.as_str()];
    WAITING_ROOM_QUEUED
        .with_label_values(&label)
        .set(i64::try_from(round.queued).unwrap_or(i64::MAX));
    WAITING_ROOM_OPEN.with_label_values(&label).set(open.into());
    for wait in &round.waits {
        WAITING_ROOM_WAIT.observe(*wait);
    }
    // Touched even when nobody is admitted: a room that never admits still has a series.
    WAITING_ROOM_ADMITTED
        .with_label_values(&label)
        .inc_by(round.waits.len() as u64);
    if !round.waits.is_empty() {
        tracing::debug!(%event, admitted = round.waits.len(), queued = round.queued, "fans admitted");
    }
    Ok(round.waits.len())
}
