use std::sync::Arc;

use chrono::Duration;

use crate::clock::Clock;
use crate::contracts::{Catalogue, RateLimit, ReservationStore, StockStore};
use crate::sold_out::SoldOutHints;
use crate::waiting_room::{AdmissionKey, WaitingRoom};

/// What a function gets besides its input: the contracts it may call.
#[derive(Clone)]
pub struct Context {
    pub catalogue: Arc<dyn Catalogue>,
    pub stock: Arc<dyn StockStore>,
    pub reservations: Arc<dyn ReservationStore>,
    pub clock: Arc<dyn Clock>,
    /// How long a hold lasts before it expires.
    pub reservation_ttl: Duration,
    /// How often one user may reserve in one category; `None`: no limit.
    pub reserve_rate_limit: Option<RateLimit>,
    /// How long the stock store keeps a finished hold once the reservation store has it.
    pub finished_hold_retention: Duration,
    /// The queues in front of `/reserve`, for events that have one.
    pub waiting_room: Arc<dyn WaitingRoom>,
    /// Signs and checks admissions; every process of a deployment has the same.
    pub admission_key: Arc<AdmissionKey>,
    /// This process's recent sold-out answers from the stock store, shared by its requests.
    pub sold_out_hints: Arc<SoldOutHints>,
}

/// The default of `finished_hold_retention`: a hold lasts 10 minutes by default, and a
/// client's retries of one purchase fall well inside this; past it every answer about the
/// hold comes, unchanged, from the reservation store.
pub const DEFAULT_FINISHED_HOLD_RETENTION: Duration = Duration::minutes(15);
