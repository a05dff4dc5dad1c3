//! Redis (bb8-redis): live stock and holds. Every transition is one Lua script that also
//! appends its event to the shard's outbox stream, so a change and its event are one atomic
//! step; the outbox relay moves events on to Kafka. Scripts read Redis's own clock. See
//! `keys.rs` for the layout.

mod connection;
mod durability;
mod keys;
mod outbox;
mod ping;
mod restore;
mod waiting_room;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures_util::future::try_join_all;
use redis::{ErrorKind, FromRedisValue, Pipeline, Script, ServerErrorKind, Value};

use self::connection::Connections;
pub use self::connection::RedisTarget;
use self::durability::Durability;
pub use self::durability::ReplicaAcks;
use self::keys::{CategoryKeys, Shard, parse_category_member};
pub use self::outbox::OutboxEntry;
pub use self::restore::StockState;
use self::waiting_room::RoomScripts;
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
    target: RedisTarget,
    connections: Connections,
    scripts: Scripts,
    room_scripts: RoomScripts,
    durability: Option<Durability>,
}

impl RedisStockStore {
    pub async fn connect(target: &RedisTarget) -> Result<Self, StoreError> {
        Ok(Self {
            target: target.clone(),
            connections: Connections::open(target).await?,
            scripts: Scripts::new(),
            room_scripts: RoomScripts::new(),
            durability: None,
        })
    }

    /// Answers a change only once its master's replicas have it (up to `acks.replicas`), so
    /// a master that fails takes no answered change with it; and lets the relay publish only
    /// events that replicas have, so Kafka never carries a change a failover undid. See
    /// `durability.rs`.
    pub async fn with_replica_acks(mut self, acks: ReplicaAcks) -> Result<Self, StoreError> {
        self.durability = match acks.replicas {
            0 => None,
            _ => Some(Durability::open(&self.target, acks).await?),
        };
        Ok(self)
    }

    /// `used_memory` from `INFO memory`, summed over a cluster's masters.
    pub async fn used_memory(&self) -> Result<u64, StoreError> {
        let info: Value = self.query(redis::cmd("INFO").arg("memory")).await?;
        let texts: Vec<String> = match info {
            Value::Map(per_node) => per_node
                .into_iter()
                .map(|(_, text)| String::from_redis_value(text))
                .collect::<Result<_, _>>(),
            single => String::from_redis_value(single).map(|text| vec![text]),
        }
        .map_err(|err| StoreError(format!("redis: INFO: {err}")))?;
        texts
            .iter()
            .map(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("used_memory:"))
                    .and_then(|bytes| bytes.trim().parse::<u64>().ok())
                    .ok_or_else(|| StoreError("redis: INFO has no used_memory".into()))
            })
            .sum()
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

    /// One pipeline per shard, sent together: on a cluster each goes to its shard's master, on
    /// one server they share a round trip. Replies in the pipelines' order. A pipeline that
    /// calls `script` loads it if Redis lost it.
    async fn on_shards(
        &self,
        pipelines: &[Pipeline],
        script: Option<&Script>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        try_join_all(pipelines.iter().map(|pipeline| async move {
            match script {
                _ if pipeline.is_empty() => Ok(Vec::new()),
                Some(script) => self.pipeline(pipeline, script).await,
                None => self.run(pipeline).await,
            }
        }))
        .await
    }

    /// Runs `commands`, each on its shard's slot, grouped into one pipeline per shard
    /// ([`Self::on_shards`]); the replies come back in the commands' order.
    async fn by_shard<T: FromRedisValue>(
        &self,
        commands: impl IntoIterator<Item = (Shard, redis::Cmd)>,
    ) -> Result<Vec<T>, StoreError> {
        let mut groups: BTreeMap<Shard, (Pipeline, Vec<usize>)> = BTreeMap::new();
        let mut count = 0;
        for (shard, command) in commands {
            let (pipeline, places) = groups.entry(shard).or_default();
            pipeline.add_command(command);
            places.push(count);
            count += 1;
        }
        let (pipelines, places): (Vec<Pipeline>, Vec<Vec<usize>>) = groups.into_values().unzip();
        let mut replies = vec![Value::Nil; count];
        for (places, values) in places.iter().zip(self.on_shards(&pipelines, None).await?) {
            for (place, value) in places.iter().zip(values) {
                replies[*place] = value;
            }
        }
        replies.into_iter().map(parse_value).collect()
    }

    /// `command`'s reply for every shard, each with its master's clock (ms) when it ran: one
    /// round trip. On one server, one clock reading serves every shard (the sweeper runs
    /// this four times a second, idle or not).
    async fn per_shard<T: FromRedisValue>(
        &self,
        command: impl Fn(&keys::ShardKeys) -> redis::Cmd,
    ) -> Result<Vec<(u64, T)>, StoreError> {
        let clock_per_shard = self.connections.is_cluster();
        let pipelines: Vec<Pipeline> = Shard::all()
            .map(|shard| {
                let mut pipeline = redis::pipe();
                if clock_per_shard || shard.route() == 0 {
                    pipeline.cmd("TIME");
                }
                pipeline.add_command(command(shard.keys()));
                pipeline
            })
            .collect();
        let mut now = 0;
        self.on_shards(&pipelines, None)
            .await?
            .into_iter()
            .map(|mut replies| {
                let reply = parse_value(replies.pop().unwrap_or(Value::Nil))?;
                if let Some(time) = replies.pop() {
                    let (seconds, micros): (u64, u64) = parse_value(time)?;
                    now = seconds * 1000 + micros / 1000;
                }
                Ok((now, reply))
            })
            .collect()
    }

    /// The `count` lowest-scored members (with their scores) of one sorted set of every
    /// shard, each with its master's clock (ms): one round trip.
    async fn earliest_per_shard(
        &self,
        index: impl Fn(&keys::ShardKeys) -> &String,
        count: isize,
    ) -> Result<Vec<(u64, Vec<(String, u64)>)>, StoreError> {
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
        let replies: Vec<[Option<String>; 4]> = self
            .by_shard(
                categories
                    .iter()
                    .map(|keys| (keys.shard, counters_command(keys))),
            )
            .await?;
        Ok(replies.iter().map(parse_counters).collect())
    }

    /// Runs a transition's pipeline, whose first command is `script`'s, and returns the
    /// script's reply; with replica acks, once the shard's replicas have the change.
    async fn transition<T: FromRedisValue>(
        &self,
        pipeline: Pipeline,
        shard: Shard,
        script: &Script,
    ) -> Result<T, StoreError> {
        let (reply,): (T,) = self.pipeline(&pipeline, script).await?;
        if let Some(durability) = &self.durability {
            durability.confirm(shard).await?;
        }
        Ok(reply)
    }
}

fn parse_value<T: FromRedisValue>(value: Value) -> Result<T, StoreError> {
    T::from_redis_value(value).map_err(|err| StoreError(format!("redis: {err}")))
}

fn counters_command(keys: &CategoryKeys) -> redis::Cmd {
    let mut command = redis::cmd("HMGET");
    command
        .arg(&keys.stock)
        .arg(&["total", "available", "held", "sold"]);
    command
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
            .arg(max);
        let _created: bool = self
            .transition(pipeline, keys.shard, &self.scripts.add_category)
            .await?;
        Ok(())
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
        let per_shard: Vec<(u64, Vec<String>)> = self
            .per_shard(|shard| {
                let mut command = redis::cmd("ZRANGEBYSCORE");
                command.arg(&shard.touched).arg(since).arg("+inf");
                command
            })
            .await?;
        // Masters' clocks may differ a little: the next mark is the earliest, so no change
        // is missed.
        let now = per_shard.iter().map(|(now, _)| *now).min().unwrap_or(since);
        let changed: Vec<_> = per_shard
            .iter()
            .flat_map(|(_, members)| members)
            .filter_map(|member| keys_of_member(member))
            .collect();
        let commands = changed.iter().flat_map(|(_, _, keys)| {
            let mut live_holds = redis::cmd("ZCARD");
            live_holds.arg(&keys.deadlines);
            [
                (keys.shard, counters_command(keys)),
                (keys.shard, live_holds),
            ]
        });
        let replies: Vec<Value> = self.by_shard(commands).await?;
        let categories = changed
            .into_iter()
            .zip(replies.chunks_exact(2))
            .map(|((event_id, name, _), replies)| {
                let counters: [Option<String>; 4] = parse_value(replies[0].clone())?;
                Ok(CategorySale {
                    event_id,
                    name,
                    counts: parse_counters(&counters),
                    live_holds: parse_value(replies[1].clone())?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
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
        let reply: Vec<String> = self
            .transition(pipeline, keys.shard, &self.scripts.reserve)
            .await?;
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
        let mut call = transition_call(&self.scripts.settle, &keys);
        call.arg(id.to_string())
            .arg(user.as_str())
            .arg(settlement.status().as_str())
            .arg(ReservationEvent::VERSION);
        let mut pipeline = redis::pipe();
        pipeline.add_command(call);
        let reply: Vec<String> = self
            .transition(pipeline, keys.shard, &self.scripts.settle)
            .await?;
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
        let due = self
            .earliest_per_shard(|shard| &shard.due, DUE_PER_SHARD)
            .await?;
        let pipelines: Vec<Pipeline> = due
            .iter()
            .map(|(now, due)| {
                let mut pipeline = redis::pipe();
                let keys = due
                    .iter()
                    .filter(|(_, at)| at <= now)
                    .filter_map(|(member, _)| keys_of_member(member));
                for (_, _, keys) in keys {
                    let mut call = transition_call(&self.scripts.expire, &keys);
                    call.arg(limit).arg(ReservationEvent::VERSION);
                    pipeline.add_command(call);
                }
                pipeline
            })
            .collect();
        let expired: Vec<i64> = self
            .on_shards(&pipelines, Some(&self.scripts.expire))
            .await?
            .into_iter()
            .flatten()
            .map(parse_value)
            .collect::<Result<_, _>>()?;
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
        let finished = self
            .earliest_per_shard(|shard| &shard.finished, per_shard)
            .await?;
        let retention = u64::try_from(retention.num_milliseconds()).unwrap_or(0);
        let ids: Vec<ReservationId> = finished
            .iter()
            .flat_map(|(now, finished)| {
                let cutoff = now.saturating_sub(retention);
                finished.iter().filter(move |(_, ended)| *ended <= cutoff)
            })
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
        let finished = routed(finished);
        let made_by = self
            .field_per_hold(&finished, |shard| &shard.key_of)
            .await?;
        let mut deletes = Vec::new();
        for ((id, shard), key) in finished.iter().zip(made_by) {
            let (keys, id) = (shard.keys(), id.to_string());
            let mut delete = |name: &str, key: &str, field: Option<&str>| {
                let mut command = redis::cmd(name);
                command.arg(key).arg(field);
                deletes.push((*shard, command));
            };
            delete("HDEL", &keys.holds, Some(&id));
            delete("ZREM", &keys.finished, Some(&id));
            delete("HDEL", &keys.key_of, Some(&id));
            // A final hold never becomes live again, so its key can go outside a script.
            if let Some(key) = key {
                delete("DEL", &key, None);
            }
        }
        let _: Vec<Value> = self.by_shard(deletes).await?;
        Ok(finished.len())
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        self.category_of(id).await
    }
}

impl RedisStockStore {
    /// Each hold's field in a hash of its shard (`holds`, `key-of`), in one round trip.
    async fn field_per_hold(
        &self,
        holds: &[(ReservationId, Shard)],
        hash: impl Fn(&keys::ShardKeys) -> &String,
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.by_shard(holds.iter().map(|(id, shard)| {
            let mut command = redis::cmd("HGET");
            command.arg(hash(shard.keys())).arg(id.to_string());
            (*shard, command)
        }))
        .await
    }

    /// The stored holds of `ids`, by id, in one round trip.
    async fn stored_holds(
        &self,
        ids: &[ReservationId],
    ) -> Result<BTreeMap<ReservationId, Option<Reservation>>, StoreError> {
        let routed = routed(ids.iter().copied());
        let jsons = self.field_per_hold(&routed, |shard| &shard.holds).await?;
        routed
            .iter()
            .zip(jsons)
            .map(|((id, _), json)| Ok((*id, json.as_deref().map(parse_reservation).transpose()?)))
            .collect()
    }
}

/// `EVALSHA` of a transition script with the category's nine keys (`common.lua`) and its
/// member, the first argument of every transition; the caller adds the rest.
fn transition_call(script: &Script, keys: &CategoryKeys) -> redis::Cmd {
    let mut call = redis::cmd("EVALSHA");
    call.arg(script.get_hash())
        .arg(9)
        .arg(&keys.transition())
        .arg(&keys.member);
    call
}

/// Each id with its shard; an id no Redis store made is left out.
fn routed(ids: impl IntoIterator<Item = ReservationId>) -> Vec<(ReservationId, Shard)> {
    ids.into_iter()
        .filter_map(|id| Some((id, Shard::of_reservation(id)?)))
        .collect()
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
