//! One adapter per function: request -> typed input -> function -> status + JSON.

use std::sync::Arc;

use domain::{ApiError, Context};
use domain::{EventId, IdempotencyKey, ReservationId};
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};

use crate::readiness::Readiness;

use super::request::{Request, caller, json_body, path_id};
use super::response::{Response, json, with_body};

/// What every adapter gets: the functions' context and the runtime's own limits.
pub struct AppState {
    pub ctx: Context,
    pub body_limit: usize,
    pub readiness: Readiness,
}

type Result = std::result::Result<Response, ApiError>;

/// A constant, so that reading it is a lookup, not a parse of the name first.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

pub async fn create_event(state: Arc<AppState>, request: Request) -> Result {
    let input = json_body(request, state.body_limit).await?;
    let event = create_event::create_event(&state.ctx, input).await?;
    Ok(json(StatusCode::CREATED, &event))
}

pub async fn add_ticket_category(state: Arc<AppState>, request: Request) -> Result {
    let event_id = path_id(&request, EventId::parse)?;
    let input = json_body(request, state.body_limit).await?;
    let category = add_ticket_category::add_ticket_category(&state.ctx, event_id, input).await?;
    Ok(json(StatusCode::CREATED, &category))
}

pub async fn get_availability(state: Arc<AppState>, request: Request) -> Result {
    let event_id = path_id(&request, EventId::parse)?;
    let availability = get_availability::get_availability(&state.ctx, event_id).await?;
    Ok(json(StatusCode::OK, &availability))
}

pub async fn reserve(state: Arc<AppState>, mut request: Request) -> Result {
    let user = caller(&mut request)?.user;
    let idempotency_key = request
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
    let request = json_body(request, state.body_limit).await?;
    let input = reserve::ReserveInput {
        user,
        idempotency_key,
        request,
    };
    let change = reserve::reserve(&state.ctx, input).await?;
    Ok(json(StatusCode::CREATED, &change.reservation))
}

pub async fn confirm(state: Arc<AppState>, mut request: Request) -> Result {
    let user = caller(&mut request)?.user;
    let request = json_body(request, state.body_limit).await?;
    let change = confirm::confirm(&state.ctx, confirm::ConfirmInput { user, request }).await?;
    Ok(json(StatusCode::OK, &change.reservation))
}

pub async fn get_reservation(state: Arc<AppState>, mut request: Request) -> Result {
    let caller = caller(&mut request)?;
    let id = path_id(&request, ReservationId::parse)?;
    let reservation = get_reservation::get_reservation(&state.ctx, &caller, id).await?;
    Ok(json(StatusCode::OK, &reservation))
}

pub async fn health(_: Arc<AppState>, _: Request) -> Result {
    Ok(json(StatusCode::OK, &health::health().await))
}

pub async fn ready(state: Arc<AppState>, _: Request) -> Result {
    let ready = ready::ready(state.readiness.input()).await?;
    Ok(json(StatusCode::OK, &ready))
}

pub async fn metrics(_: Arc<AppState>, _: Request) -> Result {
    let text = get_metrics::get_metrics().await;
    let content_type = HeaderValue::from_static(get_metrics::CONTENT_TYPE);
    Ok(with_body(StatusCode::OK, content_type, text))
}
