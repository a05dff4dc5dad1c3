//! The waiting room on Redis: per event a hash and two sorted sets in the event's own slot
//! (`RoomKeys`), each step one script. Times are Redis's clock, in ms.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Script;

use domain::error::StoreError;
use domain::waiting_room::{
    AdmissionTtl, AdmitBudget, AdmitRate, Admitted, IDLE_QUEUE_KEPT_MS, Joined,
    LAPSED_ADMISSION_KEPT_MS, QueueError, QueuePlace, QueueStatus, RoomMark, WaitingRoom,
    WaitingRoomSettings,
};
use domain::{EventId, UserId};

use crate::RedisStockStore;
use crate::keys::{ROOMS, RoomKeys};

pub(crate) struct RoomScripts {
    configure: Script,
    place: Script,
    admit: Script,
}

impl RoomScripts {
    pub(crate) fn new() -> Self {
        Self {
            configure: Script::new(include_str!("scripts/room_configure.lua")),
            place: Script::new(include_str!("scripts/room_place.lua")),
            admit: Script::new(include_str!("scripts/room_admit.lua")),
        }
    }
}

impl RedisStockStore {
    /// Runs a room script on the room's keys, loading it if Redis lost it.
    async fn room_script<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        event: EventId,
        args: &[String],
    ) -> Result<T, StoreError> {
        let keys = RoomKeys::new(event);
        let mut call = redis::cmd("EVALSHA");
        call.arg(script.get_hash()).arg(3).arg(&keys.all()[..]);
        call.arg(args);
        let mut pipeline = redis::pipe();
        pipeline.add_command(call);
        let (reply,): (T,) = self.pipeline(&pipeline, script).await?;
        Ok(reply)
    }

    async fn place_script(
        &self,
        event: EventId,
        user: &UserId,
        join: bool,
        draw: f64,
    ) -> Result<Option<(QueuePlace, bool)>, QueueError> {
        let args = [
            user.as_str().to_owned(),
            u8::from(join).to_string(),
            draw.to_string(),
            IDLE_QUEUE_KEPT_MS.to_string(),
        ];
        let reply: Vec<i64> = self
            .room_script(&self.room_scripts.place, event, &args)
            .await?;
        let status = match reply.first() {
            Some(-1) => return Err(QueueError::NoWaitingRoom),
            Some(0) => return Ok(None),
            Some(1) => QueueStatus::Waiting,
            Some(2) => QueueStatus::Admitted,
            Some(3) => QueueStatus::SoldOut,
            Some(4) => QueueStatus::Expired,
            _ => return Err(unexpected(&reply).into()),
        };
        let &[
            _,
            position,
            admitted_until,
            version,
            admitted_total,
            sold_out,
            created,
        ] = &reply[..]
        else {
            return Err(unexpected(&reply).into());
        };
        let place = QueuePlace {
            status,
            position: position.max(0) as u64,
            admitted_until: match status {
                QueueStatus::Admitted | QueueStatus::Expired => {
                    DateTime::from_timestamp_millis(admitted_until)
                }
                _ => None,
            },
            mark: RoomMark {
                version: version.max(0) as u64,
                admitted_total: admitted_total.max(0) as u64,
                sold_out: sold_out == 1,
            },
        };
        Ok(Some((place, created == 1)))
    }
}

fn unexpected(reply: &[i64]) -> StoreError {
    StoreError(format!("redis: unexpected waiting room reply {reply:?}"))
}

#[async_trait]
impl WaitingRoom for RedisStockStore {
    async fn configure(
        &self,
        event: EventId,
        settings: &WaitingRoomSettings,
    ) -> Result<(), StoreError> {
        let args = [
            u8::from(settings.enabled).to_string(),
            settings.admit_per_second.get().to_string(),
            settings.admission_ttl.get().to_string(),
            settings
                .opens_at
                .map(|at| at.timestamp_millis().to_string())
                .unwrap_or_default(),
        ];
        let _: i64 = self
            .room_script(&self.room_scripts.configure, event, &args)
            .await?;
        // The timer's list of rooms is in another slot: a room listed but gone is skipped.
        let command = if settings.enabled { "SADD" } else { "SREM" };
        self.query(redis::cmd(command).arg(ROOMS).arg(event.to_string()))
            .await
    }

    async fn settings(&self, event: EventId) -> Result<Option<WaitingRoomSettings>, StoreError> {
        let keys = RoomKeys::new(event);
        let (rate, ttl, opens_at): (Option<i64>, Option<i64>, Option<String>) = self
            .query(
                redis::cmd("HMGET")
                    .arg(&keys.room)
                    .arg("rate")
                    .arg("ttl")
                    .arg("opens_at"),
            )
            .await?;
        let (Some(rate), Some(ttl)) = (rate, ttl) else {
            return Ok(None);
        };
        let broken = |err: String| StoreError(format!("redis: waiting room settings: {err}"));
        Ok(Some(WaitingRoomSettings {
            enabled: true,
            admit_per_second: AdmitRate::new(rate).map_err(broken)?,
            admission_ttl: AdmissionTtl::new(ttl).map_err(broken)?,
            opens_at: opens_at
                .and_then(|millis| millis.parse().ok())
                .and_then(DateTime::from_timestamp_millis),
        }))
    }

    async fn join(
        &self,
        event: EventId,
        user: &UserId,
        draw: f64,
        _now: DateTime<Utc>,
    ) -> Result<Joined, QueueError> {
        let (place, created) = self
            .place_script(event, user, true, draw)
            .await?
            .ok_or_else(|| StoreError("redis: a fan just queued has no place".into()))?;
        Ok(Joined { place, created })
    }

    async fn place(
        &self,
        event: EventId,
        user: &UserId,
        _now: DateTime<Utc>,
    ) -> Result<Option<QueuePlace>, QueueError> {
        let place = self.place_script(event, user, false, 0.0).await?;
        Ok(place.map(|(place, _)| place))
    }

    async fn mark(&self, event: EventId) -> Result<Option<RoomMark>, StoreError> {
        let keys = RoomKeys::new(event);
        let (rate, version, admitted_total, sold_out): (
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u8>,
        ) = self
            .query(
                redis::cmd("HMGET")
                    .arg(&keys.room)
                    .arg("rate")
                    .arg("version")
                    .arg("admitted_total")
                    .arg("sold_out"),
            )
            .await?;
        Ok(rate.map(|_| RoomMark {
            version: version.unwrap_or(0),
            admitted_total: admitted_total.unwrap_or(0),
            sold_out: sold_out == Some(1),
        }))
    }

    async fn rooms(&self) -> Result<Vec<EventId>, StoreError> {
        let members: Vec<String> = self.query(redis::cmd("SMEMBERS").arg(ROOMS)).await?;
        Ok(members
            .iter()
            .filter_map(|member| EventId::parse(member).ok())
            .collect())
    }

    async fn admit(
        &self,
        event: EventId,
        budget: AdmitBudget,
        _now: DateTime<Utc>,
    ) -> Result<Admitted, StoreError> {
        let args = [
            budget.max_admitted.to_string(),
            u8::from(budget.sold_out).to_string(),
            LAPSED_ADMISSION_KEPT_MS.to_string(),
            IDLE_QUEUE_KEPT_MS.to_string(),
        ];
        let reply: Vec<i64> = self
            .room_script(&self.room_scripts.admit, event, &args)
            .await?;
        let (queued, waits) = reply.split_first().ok_or_else(|| unexpected(&reply))?;
        Ok(Admitted {
            waits: waits.iter().map(|&ms| ms.max(0) as f64 / 1000.0).collect(),
            queued: (*queued).max(0) as u64,
        })
    }
}
