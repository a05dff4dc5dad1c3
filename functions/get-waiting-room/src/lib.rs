//! `GET /events/{id}/waiting-room` (public): the event's waiting room settings; or, to a
//! browser, the page where a fan joins the queue, watches it move and reserves once admitted.

use domain::waiting_room::WaitingRoomSettings;
use domain::{ApiError, Context, EventId};

/// The fan's page: one file, no framework, no build step. It reads the event id from its
/// own URL, so it is the same bytes for every event.
pub const PAGE: &str = include_str!("page.html");

/// The settings; `{"enabled": false, ...}` with the defaults for an event without a room.
pub async fn get_waiting_room(
    ctx: &Context,
    event: EventId,
) -> Result<WaitingRoomSettings, ApiError> {
    if let Some(settings) = ctx.waiting_room.settings(event).await? {
        return Ok(settings);
    }
    if ctx.catalogue.event(event).await?.is_none() {
        return Err(ApiError::not_found("event_not_found", "no such event"));
    }
    Ok(WaitingRoomSettings::off())
}
