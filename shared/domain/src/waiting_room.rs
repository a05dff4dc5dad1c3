//! The waiting room in front of `/reserve`: its settings, a fan's place in the queue, the
//! contract of the store that keeps the queue, and the signed admission a fan shows when
//! reserving.
//!
//! Fairness: fans who join before `opens_at` are drawn into a random order among themselves,
//! so arriving early gains nothing; after it, first come first served. Admission is paced
//! (`admit_per_second`), bounded by the stock (`ADMITTED_PER_TICKET`), and stops the moment
//! the event is sold out: waiting fans are told `sold_out` instead of waiting for nothing.

use std::fmt::Write as _;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{ApiError, ErrorKind, StoreError};
use crate::{Context, EventId, UserId};

bounded_count!(
    /// Fans the admit timer lets through per second, per event.
    AdmitRate,
    "admit_per_second",
    1,
    10_000
);

bounded_count!(
    /// Seconds an admitted fan has to reserve.
    AdmissionTtl,
    "admission_ttl",
    10,
    3_600
);

/// At most this many admitted, unexpired fans per available ticket, checked whenever fans
/// are admitted. Two, not one: some admitted fans walk away or lose a race for the last
/// tickets of their category, and with one the queue would stall behind every such fan for a
/// whole `admission_ttl`; more would let through fans who mostly find nothing left.
pub const ADMITTED_PER_TICKET: u32 = 2;

/// How long a lapsed admission is remembered past its deadline (ms). Meanwhile the fan is told
/// `expired`, and may join again at the back, rather than that they are not in the queue: a
/// stream, a poll or a reconnect a moment late still hears it. It counts against nothing.
pub const LAPSED_ADMISSION_KEPT_MS: i64 = 10 * 60 * 1000;

/// How long an event's queue and admissions stay once they stop moving (ms), counted from
/// the later of the last join or admission and the opening: a queue that outlives its sale
/// (sold out for good, the room left on) leaves Redis a day later, not never. The room's
/// settings stay until an admin turns it off.
pub const IDLE_QUEUE_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

/// The waiting room of one event, as an admin sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoomSettings {
    pub enabled: bool,
    #[serde(default = "default_admit_rate")]
    pub admit_per_second: AdmitRate,
    #[serde(default = "default_admission_ttl")]
    pub admission_ttl: AdmissionTtl,
    /// Fans who join before this are put in a random order among themselves.
    #[serde(
        default,
        deserialize_with = "optional_rfc3339",
        skip_serializing_if = "Option::is_none"
    )]
    pub opens_at: Option<DateTime<Utc>>,
}

fn default_admit_rate() -> AdmitRate {
    AdmitRate(100)
}

fn default_admission_ttl() -> AdmissionTtl {
    AdmissionTtl(120)
}

fn optional_rfc3339<'de, D: serde::Deserializer<'de>>(
    input: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    crate::rfc3339(input).map(Some)
}

impl WaitingRoomSettings {
    /// What an event without a waiting room shows.
    pub fn off() -> Self {
        Self {
            enabled: false,
            admit_per_second: default_admit_rate(),
            admission_ttl: default_admission_ttl(),
            opens_at: None,
        }
    }

    /// Whether first come, first served has started (fans joining now go to the back).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.opens_at.is_none_or(|opens_at| now >= opens_at)
    }
}

/// Where a fan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    Waiting,
    /// May reserve until `admitted_until`.
    Admitted,
    /// Every category is sold out with no hold left that could return: waiting is over.
    /// Tickets that come back (expiry, cancel) reopen admission, and the fan waits again.
    SoldOut,
    /// The admission lapsed unused; joining again queues the fan at the back.
    Expired,
}

/// A fan's place as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    pub status: QueueStatus,
    /// 1 for the next fan to be admitted; 0 unless waiting (or sold out while waiting).
    pub position: u64,
    pub admitted_until: Option<DateTime<Utc>>,
    /// The room's mark when this was read: a stream moves the position on from it.
    pub mark: RoomMark,
}

/// What every waiting fan's answer depends on besides their own place. Only the head of the
/// queue leaves it, and once the room is open only its tail grows, so a waiting fan's
/// position falls by exactly the growth of `admitted_total`: a stream computes it from one
/// read of its own place and the marks that follow, without reading its place again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomMark {
    /// Grows with every change of the room (admissions, sold out or not, settings).
    pub version: u64,
    /// Fans admitted since the room was set up.
    pub admitted_total: u64,
    pub sold_out: bool,
}

/// A join's outcome: the place, and whether this call made it (`false`: the fan was there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub place: QueuePlace,
    pub created: bool,
}

/// What one round of the admit timer may do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmitBudget {
    /// Admitted, unexpired fans the room may have at most after this round.
    pub max_admitted: u64,
    /// Every category is sold out and no hold is left: admit no one, tell the waiting.
    pub sold_out: bool,
}

/// What one round of the admit timer did in a room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admitted {
    /// Seconds each fan admitted now waited since joining (since `opens_at`, if earlier).
    pub waits: Vec<f64>,
    /// Fans still waiting.
    pub queued: u64,
}

/// Keeps the queue and the admissions of every event whose waiting room is on. Every method
/// is one atomic step; as for the stock store, Redis uses its own clock and the memory store
/// the `now` it is given.
#[async_trait]
pub trait WaitingRoom: Send + Sync {
    /// Sets the room up, or changes it; `enabled: false` empties the queue and the room then
    /// lets everyone reserve.
    async fn configure(
        &self,
        event: EventId,
        settings: &WaitingRoomSettings,
    ) -> Result<(), StoreError>;
    async fn settings(&self, event: EventId) -> Result<Option<WaitingRoomSettings>, StoreError>;
    /// Queues the fan, or finds the place they have. `draw`, in `0.0..1.0`, orders fans who
    /// join before `opens_at`.
    async fn join(
        &self,
        event: EventId,
        user: &UserId,
        draw: f64,
        now: DateTime<Utc>,
    ) -> Result<Joined, QueueError>;
    /// The fan's place, `None` if they are not in the queue.
    async fn place(
        &self,
        event: EventId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuePlace>, QueueError>;
    /// The room's mark, `None` if it is off.
    async fn mark(&self, event: EventId) -> Result<Option<RoomMark>, StoreError>;
    /// The events whose room is on.
    async fn rooms(&self) -> Result<Vec<EventId>, StoreError>;
    /// Forgets admissions lapsed for `LAPSED_ADMISSION_KEPT_MS`, then admits the fans at the
    /// head of the queue, as many as the pace and `budget` allow. Rounds from several processes
    /// share the pace.
    async fn admit(
        &self,
        event: EventId,
        budget: AdmitBudget,
        now: DateTime<Utc>,
    ) -> Result<Admitted, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("this event has no waiting room")]
    NoWaitingRoom,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::NoWaitingRoom => ApiError::new(
                ErrorKind::Conflict,
                "no_waiting_room",
                "this event has no waiting room: reserve directly",
            ),
            QueueError::Store(err) => err.into(),
        }
    }
}

/// A fan's place as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    pub position: u64,
    pub status: QueueStatus,
    /// An honest guess: the fans ahead at the pace of admission, plus the time to opening.
    pub eta_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_until: Option<DateTime<Utc>>,
    /// Shown in the `Admission` header of `POST /reserve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<String>,
}

impl QueueView {
    pub fn new(
        place: &QueuePlace,
        settings: &WaitingRoomSettings,
        admission: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let eta_seconds = match place.status {
            QueueStatus::Waiting => {
                let to_open = settings
                    .opens_at
                    .map_or(0, |opens_at| (opens_at - now).num_seconds().max(0));
                to_open as u64
                    + place
                        .position
                        .div_ceil(settings.admit_per_second.get().into())
            }
            _ => 0,
        };
        Self {
            position: place.position,
            status: place.status,
            eta_seconds,
            admitted_until: place.admitted_until,
            admission,
        }
    }
}

/// The room of an event, for the functions fans call: 404 if there is no such event, 409 if
/// it has no waiting room.
pub async fn open_room(ctx: &Context, event: EventId) -> Result<WaitingRoomSettings, ApiError> {
    if let Some(settings) = ctx.waiting_room.settings(event).await? {
        return Ok(settings);
    }
    match ctx.catalogue.event(event).await? {
        Some(_) => Err(QueueError::NoWaitingRoom.into()),
        None => Err(ApiError::not_found("event_not_found", "no such event")),
    }
}

/// What a fan is shown of their place: while admitted, with the admission to reserve with.
pub fn fan_view(
    ctx: &Context,
    event: EventId,
    user: &UserId,
    place: &QueuePlace,
    settings: &WaitingRoomSettings,
) -> QueueView {
    let admission = match (place.status, place.admitted_until) {
        (QueueStatus::Admitted, Some(until)) => Some(ctx.admission_key.issue(event, user, until)),
        _ => None,
    };
    QueueView::new(place, settings, admission, ctx.clock.now())
}

/// A fan who asks about a queue they are not in.
pub fn not_in_queue() -> ApiError {
    ApiError::not_found(
        "not_in_queue",
        "you are not in this event's queue: join it first",
    )
}

/// Signs admissions, so that `/reserve` checks one without asking the store: an admission is
/// the deadline and an HMAC-SHA256 of (event, user, deadline), under a key derived from the
/// runtime's secret and used for nothing else. It is good for that fan, that event, until
/// then; a forged, altered, borrowed or lapsed one is refused.
pub struct AdmissionKey(Hmac<Sha256>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionRefused {
    #[error("this event has a waiting room: join the queue and reserve once admitted")]
    Missing,
    #[error("the admission is not valid for this fan and event")]
    Invalid,
    #[error("the admission has lapsed: join the queue again")]
    Lapsed,
}

impl From<AdmissionRefused> for ApiError {
    fn from(err: AdmissionRefused) -> Self {
        ApiError::new(ErrorKind::Forbidden, "not_admitted", err.to_string())
    }
}

impl AdmissionKey {
    /// Several processes with the same secret accept each other's admissions.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut derive = Self::mac_of(secret);
        derive.update(b"ticketd admission key v1");
        Self(Self::mac_of(&derive.finalize().into_bytes()))
    }

    /// A key of its own, for a single process (the embedded stack, tests).
    pub fn random() -> Self {
        Self::from_secret(uuid::Uuid::new_v4().as_bytes())
    }

    fn mac_of(key: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        Hmac::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
    }

    fn tag(&self, event: EventId, user: &UserId, until_ms: i64) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(event.0.as_bytes());
        mac.update(&until_ms.to_be_bytes());
        mac.update(user.as_str().as_bytes());
        mac
    }

    /// `<deadline in ms since the epoch>.<tag in hex>`.
    pub fn issue(&self, event: EventId, user: &UserId, until: DateTime<Utc>) -> String {
        let until_ms = until.timestamp_millis();
        let tag = self.tag(event, user, until_ms).finalize().into_bytes();
        let mut token = format!("{until_ms}.");
        for byte in tag {
            let _ = write!(token, "{byte:02x}");
        }
        token
    }

    pub fn verify(
        &self,
        token: Option<&str>,
        event: EventId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<(), AdmissionRefused> {
        let token = token.ok_or(AdmissionRefused::Missing)?;
        let (until_ms, hex) = token.split_once('.').ok_or(AdmissionRefused::Invalid)?;
        let until_ms: i64 = until_ms.parse().map_err(|_| AdmissionRefused::Invalid)?;
        let tag = decode_hex(hex).ok_or(AdmissionRefused::Invalid)?;
        self.tag(event, user, until_ms)
            .verify_slice(&tag)
            .map_err(|_| AdmissionRefused::Invalid)?;
        if now.timestamp_millis() >= until_ms {
            return Err(AdmissionRefused::Lapsed);
        }
        Ok(())
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn fan(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    #[test]
    fn an_admission_is_good_for_its_fan_event_and_time_only() {
        let key = AdmissionKey::from_secret(b"secret");
        let (event, now) = (EventId::generate(), Utc::now());
        let until = now + Duration::seconds(60);
        let token = key.issue(event, &fan("ann"), until);
        assert_eq!(key.verify(Some(&token), event, &fan("ann"), now), Ok(()));
        let refused = [
            (Some(token.as_str()), EventId::generate(), "ann", now),
            (Some(token.as_str()), event, "bob", now),
            (None, event, "ann", now),
        ];
        for (token, event, user, now) in refused {
            assert!(key.verify(token, event, &fan(user), now).is_err());
        }
        assert_eq!(
            key.verify(Some(&token), event, &fan("ann"), until),
            Err(AdmissionRefused::Lapsed)
        );
        // Another secret, a later deadline with the old tag, or a broken tag: forged.
        let other = AdmissionKey::from_secret(b"other");
        let later = format!(
            "{}{}",
            until.timestamp_millis() + 60_000,
            &token[token.find('.').unwrap()..]
        );
        for forged in [
            other.issue(event, &fan("ann"), until),
            later,
            token.replace('.', ".0"),
            "x".into(),
        ] {
            assert_eq!(
                key.verify(Some(&forged), event, &fan("ann"), now),
                Err(AdmissionRefused::Invalid),
                "{forged}"
            );
        }
    }

    #[test]
    fn settings_default_their_pace_and_refuse_nonsense() {
        let settings: WaitingRoomSettings = serde_json::from_str(r#"{"enabled":true}"#).unwrap();
        assert_eq!(settings.admit_per_second.get(), 100);
        for bad in [
            r#"{"enabled":true,"admit_per_second":0}"#,
            r#"{"enabled":true,"admission_ttl":5}"#,
            r#"{"enabled":true,"opens_at":"tomorrow"}"#,
            r#"{"enabled":true,"colour":"red"}"#,
            r#"{}"#,
        ] {
            assert!(
                serde_json::from_str::<WaitingRoomSettings>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
