//! Settings, from flags or environment variables (`ticketd --help` lists them).

use std::net::SocketAddr;
use std::time::Duration;

use adapter_redis::{RedisTarget, ReplicaAcks};
use clap::ValueEnum;
use domain::contracts::RateLimit;
use http::HeaderValue;

/// The development secret, used (with a loud warning) when `JWT_SECRET` is unset.
pub const DEV_SECRET: &str = "dev-secret";

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// HS256 secret that signs and verifies tokens [default: dev-secret, with a warning].
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// `production` refuses to start with the development secret or one under 32 bytes.
    #[arg(
        long = "env",
        env = "TICKETD_ENV",
        value_enum,
        default_value = "development"
    )]
    pub environment: Environment,

    /// How long a hold lasts before it expires, in seconds.
    #[arg(long, env = "RESERVATION_TTL", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub reservation_ttl: u32,

    /// Functions to mount, comma-separated [default: all]. `health` and `metrics` are always
    /// mounted; `expire-holds` and `forget-finished-holds` are timers, `persist-reservations`
    /// the stream consumer and `relay-outbox` the outbox relay.
    #[arg(long, env = "FUNCTIONS", value_delimiter = ',')]
    pub functions: Option<Vec<FunctionName>>,

    /// Requests handled at once; past it the server answers 503 with Retry-After.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Reservations one user may make per minute in one category (0: no limit); past it, 429.
    #[arg(long, env = "RESERVE_RATE_PER_MINUTE", default_value_t = 60)]
    pub reserve_rate_per_minute: u32,

    /// Reservations one user may make at once before the per-minute rate applies.
    #[arg(long, env = "RESERVE_BURST", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub reserve_burst: u32,

    /// Connections open at once; past it new ones wait in the kernel's queue until one closes.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may sit idle; past it the connection is closed (slow or idle clients).
    #[arg(long, env = "HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Longest time a request may take before it is answered 503 (e.g. 10s, 500ms).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// How long a finished hold (confirmed, cancelled, expired) stays in the stock store once
    /// the reservation store has it; after that every answer about it comes from there.
    #[arg(long, env = "FINISHED_HOLD_RETENTION", default_value = "15m",
          value_parser = humantime::parse_duration)]
    pub finished_hold_retention: Duration,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "BODY_LIMIT", default_value_t = 16 * 1024)]
    pub body_limit: usize,

    /// On SIGTERM or Ctrl-C, how long in-flight requests get to finish (1s to 10m).
    #[arg(long, env = "SHUTDOWN_DRAIN_TIMEOUT", default_value = "10s", value_parser = shutdown_timeout)]
    pub shutdown_drain_timeout: Duration,

    /// Then how long the outbox relay and the stream consumer get to flush what they hold
    /// (1s to 10m). The orchestrator's stop timeout must cover both, plus a margin.
    #[arg(long, env = "SHUTDOWN_FLUSH_TIMEOUT", default_value = "15s", value_parser = shutdown_timeout)]
    pub shutdown_flush_timeout: Duration,

    /// Origins a browser may call the API from, comma-separated (e.g.
    /// https://tickets.example.com,http://127.0.0.1:3000) [default: none].
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub cors_allowed_origins: Vec<HeaderValue>,

    #[command(flatten)]
    pub stack: StackSettings,
}

/// Where the real stack is. With none of Redis, PostgreSQL and Kafka set, everything runs in
/// memory (the embedded default); with any of them, all three are required.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StackSettings {
    /// Redis holding stock and holds, e.g. redis://127.0.0.1:6379 (may carry a password).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// A Redis Cluster instead of one Redis: seed nodes, comma-separated, e.g.
    /// 127.0.0.1:7000,127.0.0.1:7001. Exclusive with REDIS_URL.
    #[arg(
        long,
        env = "REDIS_CLUSTER_NODES",
        value_delimiter = ',',
        conflicts_with = "redis_url"
    )]
    pub redis_cluster_nodes: Vec<String>,

    /// Replicas that must have a change before it is answered (Redis WAIT); with fewer in
    /// time the answer is 503 and a retry is safe. [default: 1 on a cluster, 0 on one Redis]
    #[arg(long, env = "REDIS_WAIT_REPLICAS")]
    pub redis_wait_replicas: Option<u32>,

    /// How long a change waits for its replicas, in milliseconds; under the 5 s a Redis
    /// reply may take, so a wait ends as a wait, not as a broken connection.
    #[arg(long, env = "REDIS_WAIT_TIMEOUT_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=4_000))]
    pub redis_wait_timeout_ms: u64,

    /// PostgreSQL holding the catalogue and the reservations, e.g.
    /// postgres://postgres@127.0.0.1:5432/ticketd.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Kafka bootstrap servers carrying the reservation events, e.g. 127.0.0.1:9092.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// Topic of the reservation events.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "reservations")]
    pub kafka_topic: String,

    /// Consumer group of persist-reservations.
    #[arg(long, env = "KAFKA_GROUP", default_value = "persist-reservations")]
    pub kafka_group: String,

    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,
}

impl StackSettings {
    /// Where the reservation stream is, on `brokers`.
    pub fn kafka_settings(&self, brokers: &str) -> adapter_kafka::KafkaSettings {
        adapter_kafka::KafkaSettings {
            brokers: brokers.to_owned(),
            topic: self.kafka_topic.clone(),
            group: self.kafka_group.clone(),
        }
    }
}

/// The three services of the real stack, all given.
pub struct RealStack<'a> {
    pub redis: RedisTarget,
    pub replica_acks: ReplicaAcks,
    pub database_url: &'a str,
    pub kafka_brokers: &'a str,
}

impl StackSettings {
    /// `Ok(None)`: the embedded default. An error names what is missing.
    pub fn real(&self) -> Result<Option<RealStack<'_>>, String> {
        let redis = match (&self.redis_url, self.redis_cluster_nodes.as_slice()) {
            (Some(url), _) => Some(RedisTarget::Server(url.expose().to_owned())),
            (None, []) => None,
            (None, nodes) => Some(RedisTarget::Cluster(nodes.to_vec())),
        };
        match (redis, &self.database_url, &self.kafka_brokers) {
            (None, None, None) => Ok(None),
            (Some(redis), Some(database_url), Some(kafka_brokers)) => Ok(Some(RealStack {
                replica_acks: ReplicaAcks {
                    replicas: self.redis_wait_replicas.unwrap_or(match redis {
                        RedisTarget::Cluster(_) => 1,
                        RedisTarget::Server(_) => 0,
                    }),
                    timeout_ms: self.redis_wait_timeout_ms,
                },
                redis,
                database_url: database_url.expose(),
                kafka_brokers,
            })),
            _ => Err(
                "the real stack needs Redis (REDIS_URL or REDIS_CLUSTER_NODES), DATABASE_URL \
                 and KAFKA_BROKERS (set none of them for the embedded default)"
                    .into(),
            ),
        }
    }
}

/// A setting that must never be printed (a key, a URL with a password): `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(value.into())
    }
}

/// Where the process runs; production is stricter about its secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// The shortest JWT secret production accepts: HS256's own key size.
pub const MIN_SECRET_BYTES: usize = 32;

impl Settings {
    /// Checks what clap cannot check alone; the message names the variable to fix.
    pub fn validate(&self) -> Result<(), String> {
        self.stack.real()?;
        self.finished_hold_retention()?;
        if self.environment == Environment::Production {
            match self.jwt_secret.as_ref().map(Secret::expose) {
                None | Some(DEV_SECRET) => {
                    return Err(
                        "TICKETD_ENV=production needs JWT_SECRET set to a secret of \
                                its own (the development secret is refused)"
                            .into(),
                    );
                }
                Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                    return Err(format!(
                        "TICKETD_ENV=production needs a JWT_SECRET of at least \
                         {MIN_SECRET_BYTES} bytes"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    pub fn mounts(&self, function: FunctionName) -> bool {
        self.functions
            .as_ref()
            .is_none_or(|functions| functions.contains(&function))
    }

    pub fn reserve_rate_limit(&self) -> Option<RateLimit> {
        (self.reserve_rate_per_minute > 0).then_some(RateLimit {
            per_minute: self.reserve_rate_per_minute,
            burst: self.reserve_burst,
        })
    }

    pub fn finished_hold_retention(&self) -> Result<chrono::Duration, String> {
        chrono::Duration::from_std(self.finished_hold_retention)
            .map_err(|_| "FINISHED_HOLD_RETENTION is too long".to_owned())
    }

    pub fn jwt_secret(&self) -> &str {
        self.jwt_secret.as_ref().map_or(DEV_SECRET, Secret::expose)
    }
}

/// A shutdown phase's bound: long enough to finish something, short enough to ever stop.
fn shutdown_timeout(raw: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(raw).map_err(|err| err.to_string())?;
    if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&timeout) {
        return Err("must be between 1s and 10m".into());
    }
    Ok(timeout)
}

/// A browser origin, exactly as a browser sends it: scheme, host and port, no path.
fn origin(raw: &str) -> Result<HeaderValue, String> {
    let raw = raw.trim();
    let uri: http::Uri = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not an origin"))?;
    let exact = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme @ ("http" | "https")), Some(authority)) => {
            format!("{scheme}://{authority}") == raw
        }
        _ => false,
    };
    if !exact {
        return Err(format!(
            "{raw:?} is not an origin like https://tickets.example.com (scheme and host, no path)"
        ));
    }
    HeaderValue::from_str(raw).map_err(|err| err.to_string())
}

/// The functions a process can mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FunctionName {
    CreateEvent,
    AddTicketCategory,
    GetAvailability,
    Reserve,
    Confirm,
    GetReservation,
    ExpireHolds,
    /// Drops finished holds from the stock store once stored (a timer).
    ForgetFinishedHolds,
    PersistReservations,
    SetWaitingRoom,
    GetWaitingRoom,
    JoinQueue,
    GetQueuePlace,
    WatchQueue,
    /// Admits fans from each waiting room at its pace (a timer).
    AdmitFans,
    /// Moves events from the Redis outbox to Kafka (real stack only).
    RelayOutbox,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_timeouts_are_bounded() {
        assert_eq!(shutdown_timeout("15s"), Ok(Duration::from_secs(15)));
        assert!(shutdown_timeout("0s").is_err());
        assert!(shutdown_timeout("500ms").is_err());
        assert!(shutdown_timeout("11m").is_err());
        assert!(shutdown_timeout("soon").is_err());
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(origin("https://tickets.example.com").is_ok());
        assert!(origin(" http://127.0.0.1:3000").is_ok());
        for bad in [
            "tickets.example.com",
            "https://x.com/",
            "https://x.com/shop",
            "ftp://x.com",
            "*",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::from("hunter2-hunter2-hunter2-hunter2!");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-hunter2-hunter2-hunter2!");
    }
}
