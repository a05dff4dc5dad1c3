//! Redis (bb8-redis): live stock and holds. Every transition is one Lua script that also
//! appends its event to the shard's outbox stream, so a change and its event are one atomic
//! step; the outbox relay moves events on to Kafka. Scripts read Redis's own clock. See
//! `keys.rs` for the layout.

mod connection;
mod keys;
mod outbox;
mod ping;
mod restore;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use redis::{ErrorKind, FromRedisValue, Pipeline, Script, ServerErrorKind};

use self::connection::Connections;
use self::keys::{CategoryKeys, Shard, parse_category_member};
pub use self::outbox::OutboxEntry;
pub use self::restore::StockState;
use domain::contracts::{
    CategorySale, HoldRequest, IDEMPOTENCY_KEY_TTL_SECS, ReservationChange, ReserveError,
    SaleChanges, SettleError, Settlement, StockStore,
};
use domain::error::StoreError;
use domain::{
    Category, CategoryName, EventId, Reservation, ReservationEvent, ReservationId,
    ReservationStatus, StockCounts, UserId,
};

/// Categories the sweeper looks at per shard and round: the earliest due first.
const DUE_PER_SHARD: isize = 64;

/// How stale a category's mark in its shard's `touched` may be: one a second at most.
const TOUCHED_MARK_MS: u64 = 1000;

/// A script: `common.lua` (time, outbox, `touched`) followed by the files named, in order.
macro_rules! script {
    ($($file:literal),+) => {
        Script::new(concat!(
            include_str!("scripts/common.lua"),
            $(include_str!(concat!("scripts/", $file))),+
        ))
    };
}

struct Scripts {
    reserve: Script,
    settle: Script,
    expire: Script,
    add_category: Script,
    restore: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            reserve: script!("reserve.lua"),
            settle: script!("finish.lua", "settle.lua"),
            expire: script!("finish.lua", "expire.lua"),
            add_category: script!("add_category.lua"),
            restore: script!("finish.lua", "restore.lua"),
        }
    }
}

pub struct RedisStockStore {
    connections: Connections,
    scripts: Scripts,
}

impl RedisStockStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            connections: Connections::open(url).await?,
            scripts: Scripts::new(),
        })
    }

    /// `used_memory` from `INFO memory`.
    pub async fn used_memory(&self) -> Result<u64, StoreError> {
        let info: String = self.query(redis::cmd("INFO").arg("memory")).await?;
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory:"))
            .and_then(|bytes| bytes.trim().parse().ok())
            .ok_or_else(|| StoreError("redis: INFO has no used_memory".into()))
    }

    async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connections.get().await?;
        command
            .query_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))
    }

    /// Runs a pipeline in one round trip. Redis refuses an empty one ("empty command"), so
    /// nothing to send answers at once with nothing.
    async fn run<T: FromRedisValue + Default>(&self, pipeline: &Pipeline) -> Result<T, StoreError> {
        if pipeline.is_empty() {
            return Ok(T::default());
        }
        let mut connection = self.connections.get().await?;
        pipeline
            .query_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))
    }

    /// Runs a pipeline whose scripts are called by SHA; if Redis lost them (a restart, SCRIPT
    /// FLUSH), loads `script` and runs the pipeline again. Scripts are safe to repeat.
    async fn pipeline<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
        script: &Script,
    ) -> Result<T, StoreError> {
        let mut connection = self.connections.get().await?;
        match pipeline.query_async(&mut connection).await {
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                script
                    .prepare_invoke()
                    .load_async(&mut connection)
                    .await
                    .map_err(|err| self.connections.failed(err))?;
                pipeline.query_async(&mut connection).await
            }
            result => result,
        }
        .map_err(|err| self.connections.failed(err))
    }

    /// Redis's clock in milliseconds, and `command`'s reply for every shard, in one round trip.
    async fn per_shard<T: FromRedisValue>(
        &self,
        command: impl Fn(&keys::ShardKeys) -> redis::Cmd,
    ) -> Result<(u64, Vec<T>), StoreError> {
        let mut pipeline = redis::pipe();
        pipeline.cmd("TIME");
        for shard in Shard::all() {
            pipeline.add_command(command(shard.keys()));
        }
        let mut connection = self.connections.get().await?;
        let replies: Vec<redis::Value> = pipeline
            .query_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))?;
        let parse = |value: redis::Value| {
            T::from_redis_value(value).map_err(|err| StoreError(format!("redis: {err}")))
        };
        let mut replies = replies.into_iter();
        let time = replies
            .next()
            .ok_or_else(|| StoreError("redis: no TIME".into()))?;
        let (seconds, micros): (u64, u64) = FromRedisValue::from_redis_value(time)
            .map_err(|err| StoreError(format!("redis: TIME: {err}")))?;
        let replies = replies.map(parse).collect::<Result<_, _>>()?;
        Ok((seconds * 1000 + micros / 1000, replies))
    }

    /// Redis's clock in milliseconds, and the `count` lowest-scored members (with their
    /// scores) of one sorted set of every shard, in one round trip.
    async fn earliest_per_shard(
        &self,
        index: impl Fn(&keys::ShardKeys) -> &String,
        count: isize,
    ) -> Result<(u64, Vec<Vec<(String, u64)>>), StoreError> {
        self.per_shard(|shard| {
            let mut command = redis::cmd("ZRANGE");
            command
                .arg(index(shard))
                .arg(0)
                .arg(count - 1)
                .arg("WITHSCORES");
            command
        })
        .await
    }

    /// The category of a stored hold, if Redis has it.
    async fn category_of(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        let Some(shard) = Shard::of_reservation(id) else {
            return Ok(None);
        };
        let json: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(&shard.keys().holds)
                    .arg(id.to_string()),
            )
            .await?;
        json.as_deref().map(parse_reservation).transpose()
    }

    /// Each category's counters, missing or unreadable ones as `None`, in one round trip.
    async fn counters_of(
        &self,
        categories: &[CategoryKeys],
    ) -> Result<Vec<Option<StockCounts>>, StoreError> {
        let mut pipeline = redis::pipe();
        for keys in categories {
            pipeline
                .cmd("HMGET")
                .arg(&keys.stock)
                .arg(&["total", "available", "held", "sold"]);
        }
        let replies: Vec<[Option<String>; 4]> = self.run(&pipeline).await?;
        Ok(replies.iter().map(parse_counters).collect())
    }
}

/// Counters as Redis keeps them: read as signed numbers, so a broken one (a negative `held`
/// after a partial loss) is seen as broken rather than failing the whole read.
fn parse_counters(fields: &[Option<String>; 4]) -> Option<StockCounts> {
    let mut values = [0u32; 4];
    for (value, field) in values.iter_mut().zip(fields) {
        let signed: i64 = field.as_deref()?.parse().ok()?;
        *value = u32::try_from(signed).ok()?;
    }
    let [total, available, held, sold] = values;
    Some(StockCounts {
        total,
        available,
        held,
        sold,
    })
}

fn parse_reservation(json: &str) -> Result<Reservation, StoreError> {
    serde_json::from_str(json)
        .map_err(|err| StoreError(format!("redis: stored reservation: {err}")))
}

fn unexpected(reply: &[String]) -> StoreError {
    StoreError(format!("redis: unexpected script reply {reply:?}"))
}

/// A member of a shard's sorted sets, back to its category's keys.
fn keys_of_member(member: &str) -> Option<(EventId, CategoryName, CategoryKeys)> {
    let (event, name) = parse_category_member(member)?;
    let keys = CategoryKeys::new(event, name.as_str());
    Some((event, name, keys))
}

#[async_trait]
impl StockStore for RedisStockStore {
    async fn add_category(&self, category: &Category) -> Result<(), StoreError> {
        let keys = CategoryKeys::new(category.event_id, category.name.as_str());
        let max = category.max_per_user.map_or(0, |limit| limit.get());
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("EVALSHA")
            .arg(self.scripts.add_category.get_hash())
            .arg(2)
            .arg(&keys.stock)
            .arg(&keys.shard_keys.touched)
            .arg(&keys.member)
            .arg(category.total_stock.get())
            .arg(max)
            .ignore();
        self.pipeline(&pipeline, &self.scripts.add_category).await
    }

    async fn counts(
        &self,
        event: EventId,
        names: &[CategoryName],
    ) -> Result<Vec<(CategoryName, StockCounts)>, StoreError> {
        let keys: Vec<CategoryKeys> = names
            .iter()
            .map(|name| CategoryKeys::new(event, name.as_str()))
            .collect();
        let counters = self.counters_of(&keys).await?;
        Ok(names
            .iter()
            .zip(counters)
            .filter_map(|(name, counts)| Some((name.clone(), counts?)))
            .collect())
    }

    /// The categories each shard's `touched` saw change since the mark (Redis time, ms),
    /// with their counters and live holds: two round trips, whatever the number of
    /// categories, and only the changed ones read.
    async fn sale_changes(&self, since: u64) -> Result<SaleChanges, StoreError> {
        let (now, members): (u64, Vec<Vec<String>>) = self
            .per_shard(|shard| {
                let mut command = redis::cmd("ZRANGEBYSCORE");
                command.arg(&shard.touched).arg(since).arg("+inf");
                command
            })
            .await?;
        let changed: Vec<_> = members
            .iter()
            .flatten()
            .filter_map(|member| keys_of_member(member))
            .collect();
        let mut pipeline = redis::pipe();
        for (_, _, keys) in &changed {
            pipeline
                .cmd("HMGET")
                .arg(&keys.stock)
                .arg(&["total", "available", "held", "sold"])
                .cmd("ZCARD")
                .arg(&keys.deadlines);
        }
        let replies: Vec<([Option<String>; 4], u32)> = self.run(&pipeline).await?;
        let categories = changed
            .into_iter()
            .zip(replies)
            .map(
                |((event_id, name, _), (counters, live_holds))| CategorySale {
                    event_id,
                    name,
                    counts: parse_counters(&counters),
                    live_holds,
                },
            )
            .collect();
        // A category is marked at most once a second (`mark_touched` in common.lua), so the
        // next read starts a second before this read's clock: a change in that second is
        // read twice rather than missed.
        Ok(SaleChanges {
            categories,
            next: now.saturating_sub(TOUCHED_MARK_MS),
        })
    }

    async fn reserve(&self, hold: HoldRequest) -> Result<ReservationChange, ReserveError> {
        let keys = CategoryKeys::new(hold.event_id, hold.category.as_str());
        // The script reads these keys only when its arguments say so (a TTL, a rate);
        // otherwise they are neither built nor sent.
        let idempotency_key = hold
            .idempotency_key
            .as_ref()
            .map(|key| keys.idempotency(&hold.user, key.as_str()));
        let rate_key = hold.rate_limit.map(|_| keys.rate(&hold.user));
        // Redis's clock starts the hold; the caller's says only how long it lasts.
        let lasts_ms = (hold.expires_at - hold.now).num_milliseconds().max(0);
        let reservation_id = ReservationId::generate_routed(keys.shard.route());
        let id = reservation_id.to_string();
        let json_head = reservation_json_head(&id, &hold)?;
        let script_keys = keys.reserve(rate_key.as_deref(), idempotency_key.as_deref());
        let mut invocation = redis::cmd("EVALSHA");
        invocation
            .arg(self.scripts.reserve.get_hash())
            .arg(script_keys.len())
            .arg(&script_keys)
            .arg(&keys.member)
            .arg(&id)
            .arg(hold.user.as_str())
            .arg(hold.qty.get())
            .arg(lasts_ms)
            .arg(&json_head)
            .arg(ReservationEvent::VERSION);
        // Past the seventh, arguments come with their keys (see reserve.lua).
        if rate_key.is_some() || idempotency_key.is_some() {
            let (per_minute, burst) = hold
                .rate_limit
                .map_or((0, 0), |limit| (limit.per_minute, limit.burst));
            invocation.arg(per_minute).arg(burst);
        }
        if idempotency_key.is_some() {
            invocation.arg(IDEMPOTENCY_KEY_TTL_SECS);
        }
        let mut pipeline = redis::pipe();
        pipeline.add_command(invocation);
        let (reply,): (Vec<String>,) = self.pipeline(&pipeline, &self.scripts.reserve).await?;
        let reservation = |reply: &[String]| -> Result<Reservation, StoreError> {
            parse_reservation(reply.get(1).ok_or_else(|| unexpected(reply))?)
        };
        match reply.first().map(String::as_str) {
            // The hold is the request's, made at Redis's time and lasting as asked: nothing
            // to parse but that time.
            Some("held") => {
                let created_at = reply
                    .get(1)
                    .and_then(|millis| millis.parse().ok())
                    .and_then(DateTime::from_timestamp_millis)
                    .ok_or_else(|| unexpected(&reply))?;
                let expires_at = created_at + Duration::milliseconds(lasts_ms);
                let reservation = Reservation {
                    id: reservation_id,
                    event_id: hold.event_id,
                    category: hold.category,
                    user_id: hold.user,
                    qty: hold.qty,
                    status: ReservationStatus::Held,
                    created_at,
                    expires_at,
                    updated_at: created_at,
                };
                Ok(ReservationChange {
                    reservation,
                    changed: true,
                })
            }
            Some("replay") => {
                let earlier = reservation(&reply)?;
                if earlier.qty != hold.qty {
                    return Err(ReserveError::IdempotencyKeyReused);
                }
                Ok(ReservationChange {
                    reservation: earlier,
                    changed: false,
                })
            }
            Some("sold_out") => Err(ReserveError::SoldOut),
            Some("rate_limited") => {
                let seconds = reply.get(1).and_then(|seconds| seconds.parse().ok());
                Err(ReserveError::RateLimited {
                    retry_after_secs: seconds.ok_or_else(|| unexpected(&reply))?,
                })
            }
            Some("unknown_category") => Err(ReserveError::UnknownCategory),
            Some("stock_missing") => Err(stock_missing(&keys).into()),
            Some("limit_exceeded") => {
                let max = reply.get(1).and_then(|max| max.parse().ok());
                Err(ReserveError::LimitExceeded {
                    max: max.ok_or_else(|| unexpected(&reply))?,
                })
            }
            _ => Err(unexpected(&reply).into()),
        }
    }

    /// Two round trips: the hold, found by its id, names its category; then the script.
    async fn settle(
        &self,
        id: ReservationId,
        user: &UserId,
        settlement: Settlement,
        _now: DateTime<Utc>,
    ) -> Result<ReservationChange, SettleError> {
        let held = self.category_of(id).await?.ok_or(SettleError::NotFound)?;
        let keys = CategoryKeys::new(held.event_id, held.category.as_str());
        let mut invocation = self.scripts.settle.prepare_invoke();
        for key in keys.transition() {
            invocation.key(key);
        }
        invocation
            .arg(&keys.member)
            .arg(id.to_string())
            .arg(user.as_str())
            .arg(settlement.status().as_str())
            .arg(ReservationEvent::VERSION);
        let mut connection = self.connections.get().await?;
        let reply: Vec<String> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))?;
        let reservation = |reply: &[String]| -> Result<Reservation, StoreError> {
            parse_reservation(reply.get(1).ok_or_else(|| unexpected(reply))?)
        };
        match reply.first().map(String::as_str) {
            Some("changed") => Ok(ReservationChange {
                reservation: reservation(&reply)?,
                changed: true,
            }),
            Some("unchanged") => Ok(ReservationChange {
                reservation: reservation(&reply)?,
                changed: false,
            }),
            Some("not_found") => Err(SettleError::NotFound),
            Some("expired") => Err(SettleError::Expired),
            Some("stock_missing") => Err(stock_missing(&keys).into()),
            Some("already_final") => {
                let status = match reply.get(1).map(String::as_str) {
                    Some("confirmed") => ReservationStatus::Confirmed,
                    Some("cancelled") => ReservationStatus::Cancelled,
                    _ => return Err(unexpected(&reply).into()),
                };
                Err(SettleError::AlreadyFinal(status))
            }
            _ => Err(unexpected(&reply).into()),
        }
    }

    /// Visits only categories the shards' `due` says have a hold past its deadline, by
    /// Redis's clock: idle, one round trip of a command per shard.
    async fn expire_due(&self, _now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let (now, due) = self
            .earliest_per_shard(|shard| &shard.due, DUE_PER_SHARD)
            .await?;
        let mut pipeline = redis::pipe();
        for (member, _) in due.iter().flatten().filter(|(_, at)| *at <= now) {
            let Some((_, _, keys)) = keys_of_member(member) else {
                continue;
            };
            pipeline
                .cmd("EVALSHA")
                .arg(self.scripts.expire.get_hash())
                .arg(9)
                .arg(&keys.transition())
                .arg(&keys.member)
                .arg(limit)
                .arg(ReservationEvent::VERSION);
        }
        if pipeline.is_empty() {
            return Ok(0);
        }
        let expired: Vec<i64> = self.pipeline(&pipeline, &self.scripts.expire).await?;
        if expired.contains(&-1) {
            tracing::error!(
                "holds are due in a category whose stock is missing: run ticketd reconcile"
            );
        }
        Ok(expired
            .iter()
            .map(|count| usize::try_from(*count).unwrap_or(0))
            .sum())
    }

    async fn finished_holds(
        &self,
        _now: DateTime<Utc>,
        retention: Duration,
        limit: usize,
    ) -> Result<Vec<(ReservationId, ReservationStatus)>, StoreError> {
        let per_shard = isize::try_from(limit.max(1)).unwrap_or(isize::MAX);
        let (now, finished) = self
            .earliest_per_shard(|shard| &shard.finished, per_shard)
            .await?;
        let cutoff = now.saturating_sub(u64::try_from(retention.num_milliseconds()).unwrap_or(0));
        let ids: Vec<ReservationId> = finished
            .iter()
            .flatten()
            .filter(|(_, ended)| *ended <= cutoff)
            .filter_map(|(id, _)| ReservationId::parse(id).ok())
            .take(limit)
            .collect();
        let holds = self.stored_holds(&ids).await?;
        Ok(holds
            .into_values()
            .flatten()
            .filter(|hold| hold.status.is_final())
            .map(|hold| (hold.id, hold.status))
            .collect())
    }

    /// Two round trips: which holds are final and what keys made them, then the deletes.
    async fn forget_holds(&self, ids: &[ReservationId]) -> Result<usize, StoreError> {
        let holds = self.stored_holds(ids).await?;
        let finished: Vec<ReservationId> = holds
            .values()
            .flatten()
            .filter(|hold| hold.status.is_final())
            .map(|hold| hold.id)
            .collect();
        let mut pipeline = redis::pipe();
        for id in &finished {
            if let Some(shard) = Shard::of_reservation(*id) {
                pipeline
                    .cmd("HGET")
                    .arg(&shard.keys().key_of)
                    .arg(id.to_string());
            }
        }
        let made_by: Vec<Option<String>> = self.run(&pipeline).await?;
        let mut pipeline = redis::pipe();
        for (id, key) in finished.iter().zip(&made_by) {
            let Some(shard) = Shard::of_reservation(*id) else {
                continue;
            };
            let (shard, id) = (shard.keys(), id.to_string());
            pipeline
                .cmd("HDEL")
                .arg(&shard.holds)
                .arg(&id)
                .ignore()
                .cmd("ZREM")
                .arg(&shard.finished)
                .arg(&id)
                .ignore()
                .cmd("HDEL")
                .arg(&shard.key_of)
                .arg(&id)
                .ignore();
            // A final hold never becomes live again, so its key can go outside a script.
            if let Some(key) = key {
                pipeline.cmd("DEL").arg(key).ignore();
            }
        }
        self.run::<()>(&pipeline).await?;
        Ok(finished.len())
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        self.category_of(id).await
    }
}

impl RedisStockStore {
    /// The stored holds of `ids`, by id, in one round trip.
    async fn stored_holds(
        &self,
        ids: &[ReservationId],
    ) -> Result<BTreeMap<ReservationId, Option<Reservation>>, StoreError> {
        let mut pipeline = redis::pipe();
        let routed: Vec<(ReservationId, Shard)> = ids
            .iter()
            .filter_map(|id| Some((*id, Shard::of_reservation(*id)?)))
            .collect();
        for (id, shard) in &routed {
            pipeline
                .cmd("HGET")
                .arg(&shard.keys().holds)
                .arg(id.to_string());
        }
        let jsons: Vec<Option<String>> = self.run(&pipeline).await?;
        routed
            .iter()
            .zip(jsons)
            .map(|((id, _), json)| Ok((*id, json.as_deref().map(parse_reservation).transpose()?)))
            .collect()
    }
}

/// A new hold's JSON up to its times, which the script appends by Redis's clock: built here,
/// where the strings are escaped, so the script only concatenates.
fn reservation_json_head(id: &str, hold: &HoldRequest) -> Result<String, StoreError> {
    let escaped = |text: &str| {
        serde_json::to_string(text).map_err(|err| StoreError(format!("reservation JSON: {err}")))
    };
    Ok(format!(
        r#"{{"reservation_id":"{id}","event_id":"{}","category":{},"user_id":{},"qty":{},"status":"held","#,
        hold.event_id,
        escaped(hold.category.as_str())?,
        escaped(hold.user.as_str())?,
        hold.qty.get()
    ))
}

/// A category whose stock is gone while its holds remain: refused until reconcile.
fn stock_missing(keys: &CategoryKeys) -> StoreError {
    StoreError(format!(
        "redis: the stock of category {} is missing; run ticketd reconcile",
        keys.member
    ))
}
