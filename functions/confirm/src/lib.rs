//! `POST /confirm` (user): the payment outcome. Paid turns the hold into a sale; not paid
//! releases it. Only the owner may act, each hold ends once, and a repeat gets the same answer.

use domain::Context;
use domain::contracts::{ReservationChange, SettleError, Settlement};
use domain::error::StoreError;
use domain::{ReservationId, ReservationStatus, UserId};
use serde::Deserialize;
use telemetry::HOLD_OUTCOMES;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub reservation_id: ReservationId,
    pub payment_ok: bool,
}

#[derive(Debug)]
pub struct ConfirmInput {
    pub user: UserId,
    pub request: ConfirmRequest,
}

pub async fn confirm(ctx: &Context, input: ConfirmInput) -> Result<ReservationChange, SettleError> {
    let settlement = if input.request.payment_ok {
        Settlement::Confirm
    } else {
        Settlement::Cancel
    };
    let id = input.request.reservation_id;
    let change = match ctx
        .stock
        .settle(id, &input.user, settlement, ctx.clock.now())
        .await
    {
        Err(SettleError::NotFound) => settled_earlier(ctx, id, &input.user, settlement).await?,
        settled => settled?,
    };
    if change.changed {
        HOLD_OUTCOMES
            .with_label_values(&[change.reservation.status.as_str()])
            .inc();
    }
    Ok(change)
}

/// The answer for a hold the stock store no longer keeps (it forgets finished holds once
/// they are stored): the same as it gave while it had it, from the reservation store.
async fn settled_earlier(
    ctx: &Context,
    id: ReservationId,
    user: &UserId,
    settlement: Settlement,
) -> Result<ReservationChange, SettleError> {
    let stored = ctx.reservations.get(id).await?;
    let reservation = stored
        .filter(|reservation| reservation.user_id == *user)
        .ok_or(SettleError::NotFound)?;
    match reservation.status {
        status if status == settlement.status() => Ok(ReservationChange {
            reservation,
            changed: false,
        }),
        ReservationStatus::Expired => Err(SettleError::Expired),
        // Stored as live but not in the stock store: the stock store lost it, and only
        // reconcile can say what became of it.
        ReservationStatus::Held => Err(StoreError(format!(
            "reservation {id} is stored as held but the stock store does not have it"
        ))
        .into()),
        status => Err(SettleError::AlreadyFinal(status)),
    }
}
