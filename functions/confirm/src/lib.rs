//! `POST /confirm` (user): the payment outcome. Paid turns the hold into a sale; not paid
//! releases it. Only the owner may act, each hold ends once, and a repeat gets the same answer.

use domain::Context;
use domain::contracts::{ReservationChange, SettleError, Settlement};
use domain::{ReservationId, UserId};
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
    let change = ctx
        .stock
        .settle(
            input.request.reservation_id,
            &input.user,
            settlement,
            ctx.clock.now(),
        )
        .await?;
    if change.changed {
        HOLD_OUTCOMES
            .with_label_values(&[change.reservation.status.as_str()])
            .inc();
    }
    Ok(change)
}
