//! Redis (bb8-redis): live stock and holds. Every transition is one Lua script that also
//! appends its event to the category's outbox stream, so a change and its event are one atomic
//! step; the outbox relay moves events on to Kafka. See `keys.rs` for the layout.

mod connection;
mod keys;
mod outbox;
mod ping;
mod restore;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use redis::{ErrorKind, FromRedisValue, Pipeline, Script, ServerErrorKind};

use self::connection::Connections;
use self::keys::{
    CATEGORIES, CategoryKeys, category_member, event_categories, parse_category_member,
    reservation_category,
};
pub use self::outbox::OutboxEntry;
use domain::contracts::{
    HoldRequest, IDEMPOTENCY_KEY_TTL_SECS, ReservationChange, ReserveError, SettleError,
    Settlement, StockStore,
};
use domain::error::StoreError;
use domain::{
    Category, CategoryName, EventId, Reservation, ReservationEvent, ReservationId,
    ReservationStatus, StockCounts, UserId,
};

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
            reserve: Script::new(include_str!("scripts/reserve.lua")),
            settle: Script::new(concat!(
                include_str!("scripts/finish.lua"),
                include_str!("scripts/settle.lua")
            )),
            expire: Script::new(concat!(
                include_str!("scripts/finish.lua"),
                include_str!("scripts/expire.lua")
            )),
            add_category: Script::new(include_str!("scripts/add_category.lua")),
            restore: Script::new(include_str!("scripts/restore.lua")),
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

    /// Every category's event and name.
    async fn all_categories(&self) -> Result<Vec<(EventId, String)>, StoreError> {
        let members: Vec<String> = self.query(redis::cmd("SMEMBERS").arg(CATEGORIES)).await?;
        Ok(members
            .iter()
            .filter_map(|member| parse_category_member(member))
            .map(|(event, name)| (event, name.to_owned()))
            .collect())
    }

    /// `command`'s reply for each of `categories`, in order, in one round trip. Redis refuses
    /// an empty pipeline ("empty command"), so no categories (an event without any yet, an
    /// empty Redis) answer at once with nothing.
    async fn per_category<T: FromRedisValue>(
        &self,
        categories: &[CategoryKeys],
        command: impl Fn(&CategoryKeys) -> redis::Cmd,
    ) -> Result<Vec<T>, StoreError> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipeline = redis::pipe();
        for keys in categories {
            pipeline.add_command(command(keys));
        }
        let mut connection = self.connections.get().await?;
        pipeline
            .query_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))
    }

    /// The counters of `categories`, in one round trip. A category without stock is one Redis
    /// lost (reconcile restores it): it is left out.
    async fn counters_of(
        &self,
        categories: &[(EventId, String)],
    ) -> Result<Vec<(EventId, CategoryName, StockCounts)>, StoreError> {
        let keys = category_keys(categories);
        let counters: Vec<[Option<u32>; 4]> = self
            .per_category(&keys, |keys| {
                let mut command = redis::cmd("HMGET");
                command
                    .arg(&keys.stock)
                    .arg(&["total", "available", "held", "sold"]);
                command
            })
            .await?;
        let mut counts = Vec::with_capacity(categories.len());
        for ((event, name), counters) in categories.iter().zip(counters) {
            let [Some(total), Some(available), Some(held), Some(sold)] = counters else {
                continue;
            };
            let name = CategoryName::parse(name).map_err(StoreError)?;
            let stock = StockCounts {
                total,
                available,
                held,
                sold,
            };
            counts.push((*event, name, stock));
        }
        Ok(counts)
    }

    /// The keys of the category a reservation belongs to, if it is known.
    async fn keys_of(&self, id: ReservationId) -> Result<Option<CategoryKeys>, StoreError> {
        let member: Option<String> = self
            .query(redis::cmd("GET").arg(reservation_category(id)))
            .await?;
        Ok(member
            .as_deref()
            .and_then(parse_category_member)
            .map(|(event, name)| CategoryKeys::new(event, name)))
    }
}

fn parse_reservation(json: &str) -> Result<Reservation, StoreError> {
    serde_json::from_str(json)
        .map_err(|err| StoreError(format!("redis: stored reservation: {err}")))
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn unexpected(reply: &[String]) -> StoreError {
    StoreError(format!("redis: unexpected script reply {reply:?}"))
}

fn category_keys(categories: &[(EventId, String)]) -> Vec<CategoryKeys> {
    categories
        .iter()
        .map(|(event, name)| CategoryKeys::new(*event, name))
        .collect()
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
            .arg(1)
            .arg(&keys.stock)
            .arg(category.total_stock.get())
            .arg(max)
            .ignore()
            .cmd("SADD")
            .arg(CATEGORIES)
            .arg(category_member(category.event_id, &category.name))
            .ignore()
            .cmd("SADD")
            .arg(event_categories(category.event_id))
            .arg(category.name.as_str())
            .ignore();
        self.pipeline(&pipeline, &self.scripts.add_category).await
    }

    async fn counts(&self, event: EventId) -> Result<Vec<(CategoryName, StockCounts)>, StoreError> {
        let names: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(event_categories(event)))
            .await?;
        let categories: Vec<(EventId, String)> =
            names.into_iter().map(|name| (event, name)).collect();
        let counts = self.counters_of(&categories).await?;
        Ok(counts
            .into_iter()
            .map(|(_, name, counts)| (name, counts))
            .collect())
    }

    async fn all_counts(&self) -> Result<Vec<(EventId, CategoryName, StockCounts)>, StoreError> {
        let categories = self.all_categories().await?;
        self.counters_of(&categories).await
    }

    /// A category's live holds are the members of its deadlines, in one round trip.
    async fn live_holds(&self) -> Result<Vec<(EventId, CategoryName, u32)>, StoreError> {
        let categories = self.all_categories().await?;
        let holds: Vec<u32> = self
            .per_category(&category_keys(&categories), |keys| {
                let mut command = redis::cmd("ZCARD");
                command.arg(&keys.deadlines);
                command
            })
            .await?;
        categories
            .into_iter()
            .zip(holds)
            .map(|((event, name), holds)| {
                let name = CategoryName::parse(&name).map_err(StoreError)?;
                Ok((event, name, holds))
            })
            .collect()
    }

    async fn reserve(&self, hold: HoldRequest) -> Result<ReservationChange, ReserveError> {
        let keys = CategoryKeys::new(hold.event_id, hold.category.as_str());
        let member = category_member(hold.event_id, &hold.category);
        // The script reads these keys only when their arguments say so (a TTL, a rate);
        // otherwise any key of the slot stands in, so nothing is built for them.
        let idempotency_key = hold
            .idempotency_key
            .as_ref()
            .map(|key| keys.idempotency(&hold.user, key.as_str()));
        let ttl = if idempotency_key.is_some() {
            IDEMPOTENCY_KEY_TTL_SECS
        } else {
            0
        };
        let rate_key = hold.rate_limit.map(|_| keys.rate(&hold.user));
        let (per_minute, burst) = hold
            .rate_limit
            .map_or((0, 0), |limit| (limit.per_minute, limit.burst));
        let now_ms = hold.now.timestamp_millis();
        let reservation = hold.into_reservation();
        let json = serde_json::to_string(&reservation)
            .map_err(|err| StoreError(format!("reservation JSON: {err}")))?;
        let id = reservation.id.to_string();
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("EVALSHA")
            .arg(self.scripts.reserve.get_hash())
            .arg(7)
            .arg(&keys.transition())
            .arg(idempotency_key.as_deref().unwrap_or(&keys.stock))
            .arg(rate_key.as_deref().unwrap_or(&keys.stock))
            .arg(&id)
            .arg(reservation.user_id.as_str())
            .arg(reservation.qty.get())
            .arg(reservation.expires_at.timestamp_millis())
            .arg(&json)
            .arg(ttl)
            .arg(ReservationEvent::VERSION)
            .arg(per_minute)
            .arg(burst)
            .arg(now_ms)
            // In the same round trip: where a confirm will find this reservation.
            .cmd("SET")
            .arg(reservation_category(reservation.id))
            .arg(member)
            .ignore();
        let (reply,): (Vec<String>,) = self.pipeline(&pipeline, &self.scripts.reserve).await?;
        match reply.first().map(String::as_str) {
            Some("held") => Ok(ReservationChange {
                reservation,
                changed: true,
            }),
            Some("replay") => {
                let earlier = parse_reservation(reply.get(1).ok_or_else(|| unexpected(&reply))?)?;
                if earlier.qty != reservation.qty {
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
            Some("limit_exceeded") => {
                let max = reply.get(1).and_then(|max| max.parse().ok());
                Err(ReserveError::LimitExceeded {
                    max: max.ok_or_else(|| unexpected(&reply))?,
                })
            }
            _ => Err(unexpected(&reply).into()),
        }
    }

    async fn settle(
        &self,
        id: ReservationId,
        user: &UserId,
        settlement: Settlement,
        now: DateTime<Utc>,
    ) -> Result<ReservationChange, SettleError> {
        let keys = self.keys_of(id).await?.ok_or(SettleError::NotFound)?;
        let mut invocation = self.scripts.settle.prepare_invoke();
        invocation
            .key(&keys.transition())
            .arg(id.to_string())
            .arg(user.as_str())
            .arg(settlement.status().as_str())
            .arg(now.timestamp_millis())
            .arg(rfc3339(now))
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

    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        let categories = self.all_categories().await?;
        if categories.is_empty() {
            return Ok(0);
        }
        let (now_ms, now) = (now.timestamp_millis(), rfc3339(now));
        let mut pipeline = redis::pipe();
        for (event, name) in &categories {
            let keys = CategoryKeys::new(*event, name);
            pipeline
                .cmd("EVALSHA")
                .arg(self.scripts.expire.get_hash())
                .arg(5)
                .arg(&keys.transition())
                .arg(now_ms)
                .arg(&now)
                .arg(limit)
                .arg(ReservationEvent::VERSION);
        }
        let expired: Vec<usize> = self.pipeline(&pipeline, &self.scripts.expire).await?;
        Ok(expired.iter().sum())
    }

    async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        let Some(keys) = self.keys_of(id).await? else {
            return Ok(None);
        };
        let json: Option<String> = self
            .query(redis::cmd("HGET").arg(&keys.holds).arg(id.to_string()))
            .await?;
        json.as_deref().map(parse_reservation).transpose()
    }
}
