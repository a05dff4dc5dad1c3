//! `POST /reserve` (user): holds tickets until a deadline, in one atomic step of the stock
//! store. The hot path: one store call, nothing else awaited; none at all in a category the
//! store said a moment ago was sold out (see `domain::sold_out`).

use chrono::{DateTime, Utc};
use domain::Context;
use domain::contracts::{HoldRequest, ReservationChange, ReserveError};
use domain::{CategoryName, EventId, IdempotencyKey, Qty, UserId};
use serde::Deserialize;
use telemetry::{FAILED_RESERVATIONS, RESERVATIONS, SOLD_OUT_RESERVATIONS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    pub event_id: EventId,
    pub category: CategoryName,
    pub qty: Qty,
}

#[derive(Debug)]
pub struct ReserveInput {
    pub user: UserId,
    /// A retry with the same key returns the same reservation and never holds twice.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The admission a waiting room gave the fan (the `Admission` header), if any.
    pub admission: Option<String>,
    pub request: ReserveRequest,
}

pub async fn reserve(
    ctx: &Context,
    input: ReserveInput,
) -> Result<ReservationChange, ReserveError> {
    let now = ctx.clock.now();
    let result = match admitted(ctx, &input, now).await {
        Ok(()) => hold(ctx, input, now).await,
        Err(err) => Err(err),
    };
    match &result {
        Ok(change) if change.changed => RESERVATIONS.inc(),
        Ok(_) => {}
        // Counted whether the store or the hint answered it.
        Err(ReserveError::SoldOut) => SOLD_OUT_RESERVATIONS.inc(),
        Err(err) => FAILED_RESERVATIONS.with_label_values(&[reason(err)]).inc(),
    }
    result
}

/// Where the event has a waiting room, only fans it admitted may reserve, while their
/// admission lasts. The room's settings are remembered per process (`CachedWaitingRoom`), and
/// the admission is checked by its signature: no store call either way.
async fn admitted(
    ctx: &Context,
    input: &ReserveInput,
    now: DateTime<Utc>,
) -> Result<(), ReserveError> {
    let event = input.request.event_id;
    if ctx.waiting_room.settings(event).await?.is_some() {
        ctx.admission_key
            .verify(input.admission.as_deref(), event, &input.user, now)?;
    }
    Ok(())
}

async fn hold(
    ctx: &Context,
    input: ReserveInput,
    now: DateTime<Utc>,
) -> Result<ReservationChange, ReserveError> {
    let ReserveRequest {
        event_id,
        category,
        qty,
    } = input.request;
    // Once a category is sold out, the herd that follows is answered from what the store said
    // a moment ago. Not a request with an Idempotency-Key: it may repeat one that was held,
    // and only the store can give that hold back.
    let hints = &ctx.sold_out_hints;
    if input.idempotency_key.is_none() && hints.is_sold_out(event_id, &category, qty, now) {
        return Err(ReserveError::SoldOut);
    }
    let hold = HoldRequest {
        event_id,
        category: category.clone(),
        user: input.user,
        qty,
        idempotency_key: input.idempotency_key,
        rate_limit: ctx.reserve_rate_limit,
        now,
        expires_at: now + ctx.reservation_ttl,
    };
    let result = ctx.stock.reserve(hold).await;
    match &result {
        Ok(change) if change.changed => hints.held(event_id, &category, qty),
        Err(ReserveError::SoldOut) => hints.refused(event_id, &category, qty, now),
        _ => {}
    }
    result
}

/// The `reason` label of `failed_reservation_total`.
fn reason(err: &ReserveError) -> &'static str {
    match err {
        ReserveError::UnknownCategory => "unknown_category",
        ReserveError::SoldOut => "sold_out",
        ReserveError::LimitExceeded { .. } => "limit_exceeded",
        ReserveError::IdempotencyKeyReused => "idempotency_key_reused",
        ReserveError::RateLimited { .. } => "rate_limited",
        ReserveError::NotAdmitted(_) => "not_admitted",
        ReserveError::Store(_) => "unavailable",
    }
}
