//! `GET /events/{id}/queue/me` (user): the fan's place now; once admitted, until when, with
//! the admission to show `POST /reserve`.

use domain::waiting_room::{QueueView, fan_view, not_in_queue, open_room};
use domain::{ApiError, Context, EventId, UserId};

pub async fn get_queue_place(
    ctx: &Context,
    event: EventId,
    user: &UserId,
) -> Result<QueueView, ApiError> {
    let settings = open_room(ctx, event).await?;
    let place = ctx
        .waiting_room
        .place(event, user, ctx.clock.now())
        .await?
        .ok_or_else(not_in_queue)?;
    Ok(fan_view(ctx, event, user, &place, &settings))
}
