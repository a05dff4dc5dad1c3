//! `GET /reservations/{id}` (owner or admin): a reservation and its state.

use domain::error::StoreError;
use domain::{ApiError, Context};
use domain::{Caller, Role};
use domain::{Reservation, ReservationId};

#[derive(Debug, thiserror::Error)]
pub enum GetReservationError {
    /// Unknown, or someone else's: the two look the same so ids can't be probed.
    #[error("no such reservation")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<GetReservationError> for ApiError {
    fn from(err: GetReservationError) -> Self {
        match err {
            GetReservationError::NotFound => {
                ApiError::not_found("reservation_not_found", "no such reservation")
            }
            GetReservationError::Store(err) => err.into(),
        }
    }
}

pub async fn get_reservation(
    ctx: &Context,
    caller: &Caller,
    id: ReservationId,
) -> Result<Reservation, GetReservationError> {
    // The stock store has the live state; the reservation store keeps what it let go of.
    let reservation = match ctx.stock.reservation(id).await? {
        Some(live) => Some(live),
        None => ctx.reservations.get(id).await?,
    };
    reservation
        .filter(|reservation| caller.role == Role::Admin || reservation.user_id == caller.user)
        .ok_or(GetReservationError::NotFound)
}
