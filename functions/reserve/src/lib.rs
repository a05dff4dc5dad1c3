//! `POST /reserve` (user): holds tickets until a deadline, in one atomic step of the stock
//! store. The hot path: one store call, nothing else awaited.

use domain::Context;
use domain::contracts::{HoldRequest, ReservationChange, ReserveError};
use domain::{CategoryName, EventId, IdempotencyKey, Qty, UserId};
use serde::Deserialize;
use telemetry::{FAILED_RESERVATIONS, RESERVATIONS};

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
    pub request: ReserveRequest,
}

pub async fn reserve(
    ctx: &Context,
    input: ReserveInput,
) -> Result<ReservationChange, ReserveError> {
    let now = ctx.clock.now();
    let hold = HoldRequest {
        event_id: input.request.event_id,
        category: input.request.category,
        user: input.user,
        qty: input.request.qty,
        idempotency_key: input.idempotency_key,
        rate_limit: ctx.reserve_rate_limit,
        now,
        expires_at: now + ctx.reservation_ttl,
    };
    let result = ctx.stock.reserve(hold).await;
    match &result {
        Ok(change) if change.changed => RESERVATIONS.inc(),
        Ok(_) => {}
        Err(err) => FAILED_RESERVATIONS.with_label_values(&[reason(err)]).inc(),
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
        ReserveError::Store(_) => "unavailable",
    }
}
