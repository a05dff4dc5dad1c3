//! `POST /events/{id}/queue` (user): joins the event's waiting room, or finds the place the
//! fan has. Before the room opens, each fan draws a random place among those who joined
//! early, so arriving first, or joining again and again, gains nothing.

use domain::waiting_room::{QueueView, fan_view, open_room};
use domain::{ApiError, Context, EventId, UserId};

/// The fan's place, and whether this call queued them (`false`: they were already there).
pub async fn join_queue(
    ctx: &Context,
    event: EventId,
    user: &UserId,
) -> Result<(QueueView, bool), ApiError> {
    let settings = open_room(ctx, event).await?;
    let draw = f64::from(uuid::Uuid::new_v4().as_u128() as u32) / f64::from(u32::MAX);
    let joined = ctx
        .waiting_room
        .join(event, user, draw, ctx.clock.now())
        .await?;
    let view = fan_view(ctx, event, user, &joined.place, &settings);
    Ok((view, joined.created))
}
