//! `POST /events` (admin): creates an event that categories can then be added to.

use chrono::{DateTime, Utc};
use domain::Context;
use domain::error::StoreError;
use domain::{Event, EventId, EventName, Venue, rfc3339};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    pub name: EventName,
    #[serde(deserialize_with = "rfc3339")]
    pub date: DateTime<Utc>,
    #[serde(default)]
    pub venue: Option<Venue>,
}

pub async fn create_event(ctx: &Context, input: CreateEvent) -> Result<Event, StoreError> {
    let event = Event {
        id: EventId::generate(),
        name: input.name,
        date: input.date,
        venue: input.venue,
    };
    ctx.catalogue.insert_event(&event).await?;
    Ok(event)
}
