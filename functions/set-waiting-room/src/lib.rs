//! `PUT /events/{id}/waiting-room` (admin): turns an event's waiting room on, changes its pace
//! or opening, or turns it off (which empties its queue; everyone may then reserve).

use domain::waiting_room::WaitingRoomSettings;
use domain::{ApiError, Context, EventId};

pub async fn set_waiting_room(
    ctx: &Context,
    event: EventId,
    settings: WaitingRoomSettings,
) -> Result<WaitingRoomSettings, ApiError> {
    if ctx.catalogue.event(event).await?.is_none() {
        return Err(ApiError::not_found("event_not_found", "no such event"));
    }
    ctx.waiting_room.configure(event, &settings).await?;
    Ok(settings)
}
