//! One adapter per function: request -> typed input -> function -> status + JSON.

use std::sync::Arc;

use domain::{ApiError, Context};
use domain::{EventId, IdempotencyKey, ReservationId};
use http::StatusCode;
use http::header::{ACCEPT, HeaderName, HeaderValue, VARY};

use crate::readiness::Readiness;
use watch_queue::RoomWatch;

use super::request::{Call, json_body};
use super::response::{self, Response, json, with_body};

/// What every adapter gets: the functions' context and the runtime's own limits.
pub struct AppState {
    pub ctx: Context,
    /// The waiting rooms this process's event streams watch.
    pub rooms: Arc<RoomWatch>,
    pub body_limit: usize,
    pub readiness: Readiness,
}

type Result = std::result::Result<Response, ApiError>;

/// A constant, so that reading it is a lookup, not a parse of the name first.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const ADMISSION: HeaderName = HeaderName::from_static("admission");

pub async fn create_event(state: Arc<AppState>, call: Call) -> Result {
    let input = json_body(call.request, state.body_limit).await?;
    let event = create_event::create_event(&state.ctx, input).await?;
    Ok(json(StatusCode::CREATED, &event))
}

pub async fn add_ticket_category(state: Arc<AppState>, call: Call) -> Result {
    let event_id = call.path_id(EventId::parse)?;
    let input = json_body(call.request, state.body_limit).await?;
    let category = add_ticket_category::add_ticket_category(&state.ctx, event_id, input).await?;
    Ok(json(StatusCode::CREATED, &category))
}

pub async fn get_availability(state: Arc<AppState>, call: Call) -> Result {
    let event_id = call.path_id(EventId::parse)?;
    let availability = get_availability::get_availability(&state.ctx, event_id).await?;
    Ok(json(StatusCode::OK, &availability))
}

pub async fn reserve(state: Arc<AppState>, mut call: Call) -> Result {
    let user = call.caller()?.user;
    let idempotency_key = call
        .request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .map(|value| {
            let raw = value
                .to_str()
                .map_err(|_| "Idempotency-Key must be ASCII".to_owned())?;
            IdempotencyKey::parse(raw)
        })
        .transpose()
        .map_err(ApiError::bad_request)?;
    let admission = call
        .request
        .headers()
        .get(ADMISSION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let request = json_body(call.request, state.body_limit).await?;
    let input = reserve::ReserveInput {
        user,
        idempotency_key,
        admission,
        request,
    };
    let change = reserve::reserve(&state.ctx, input).await?;
    Ok(json(StatusCode::CREATED, &change.reservation))
}

pub async fn confirm(state: Arc<AppState>, mut call: Call) -> Result {
    let user = call.caller()?.user;
    let request = json_body(call.request, state.body_limit).await?;
    let change = confirm::confirm(&state.ctx, confirm::ConfirmInput { user, request }).await?;
    Ok(json(StatusCode::OK, &change.reservation))
}

pub async fn get_reservation(state: Arc<AppState>, mut call: Call) -> Result {
    let caller = call.caller()?;
    let id = call.path_id(ReservationId::parse)?;
    let reservation = get_reservation::get_reservation(&state.ctx, &caller, id).await?;
    Ok(json(StatusCode::OK, &reservation))
}

pub async fn health(_: Arc<AppState>, _: Call) -> Result {
    Ok(json(StatusCode::OK, &health::health().await))
}

pub async fn ready(state: Arc<AppState>, _: Call) -> Result {
    let ready = ready::ready(state.readiness.input()).await?;
    Ok(json(StatusCode::OK, &ready))
}

pub async fn metrics(_: Arc<AppState>, _: Call) -> Result {
    let text = get_metrics::get_metrics().await;
    let content_type = HeaderValue::from_static(get_metrics::CONTENT_TYPE);
    Ok(with_body(StatusCode::OK, content_type, text))
}

pub async fn set_waiting_room(state: Arc<AppState>, call: Call) -> Result {
    let event_id = call.path_id(EventId::parse)?;
    let settings = json_body(call.request, state.body_limit).await?;
    let settings = set_waiting_room::set_waiting_room(&state.ctx, event_id, settings).await?;
    Ok(json(StatusCode::OK, &settings))
}

/// The settings as JSON; to a browser (`Accept: text/html`), the fan's page. Both say they
/// vary with `Accept`, so that no cache hands the one to whoever asked for the other.
pub async fn get_waiting_room(state: Arc<AppState>, call: Call) -> Result {
    let event_id = call.path_id(EventId::parse)?;
    let wants_page = call
        .request
        .headers()
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_page {
        let html = HeaderValue::from_static("text/html; charset=utf-8");
        let mut page = with_body(StatusCode::OK, html, get_waiting_room::PAGE);
        // The page's own inline script and style, calls to this origin, and no framing.
        page.headers_mut().insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 frame-ancestors 'none'",
            ),
        );
        page.headers_mut()
            .insert(VARY, HeaderValue::from_static("accept"));
        return Ok(page);
    }
    let settings = get_waiting_room::get_waiting_room(&state.ctx, event_id).await?;
    let mut settings = json(StatusCode::OK, &settings);
    settings
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("accept"));
    Ok(settings)
}

pub async fn join_queue(state: Arc<AppState>, mut call: Call) -> Result {
    let user = call.caller()?.user;
    let event_id = call.path_id(EventId::parse)?;
    let (place, joined) = join_queue::join_queue(&state.ctx, event_id, &user).await?;
    let status = if joined {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &place))
}

pub async fn get_queue_place(state: Arc<AppState>, mut call: Call) -> Result {
    let user = call.caller()?.user;
    let event_id = call.path_id(EventId::parse)?;
    let place = get_queue_place::get_queue_place(&state.ctx, event_id, &user).await?;
    Ok(json(StatusCode::OK, &place))
}

pub async fn watch_queue(state: Arc<AppState>, mut call: Call) -> Result {
    let user = call.caller()?.user;
    let event_id = call.path_id(EventId::parse)?;
    let events = watch_queue::watch_queue(&state.ctx, &state.rooms, event_id, user).await?;
    Ok(response::events(events))
}
