//! Settings, from flags or environment variables (`ticketd --help` lists them).

use std::net::SocketAddr;
use std::time::Duration;

use clap::ValueEnum;

/// The development secret, used (with a loud warning) when `JWT_SECRET` is unset.
pub const DEV_SECRET: &str = "dev-secret";

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,

    /// HS256 secret that signs and verifies tokens [default: dev-secret, with a warning].
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// How long a hold lasts before it expires, in seconds.
    #[arg(long, env = "RESERVATION_TTL", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub reservation_ttl: u32,

    /// Functions to mount, comma-separated [default: all]. `health` and `metrics` are always
    /// mounted; `expire-holds` and `persist-reservations` are the timer and stream triggers.
    #[arg(long, env = "FUNCTIONS", value_delimiter = ',')]
    pub functions: Option<Vec<FunctionName>>,

    /// Requests handled at once; past it the server answers 503 with Retry-After.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Longest time a request may take before it is answered 503 (e.g. 10s, 500ms).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "BODY_LIMIT", default_value_t = 16 * 1024)]
    pub body_limit: usize,
}

impl Settings {
    pub fn mounts(&self, function: FunctionName) -> bool {
        self.functions
            .as_ref()
            .is_none_or(|functions| functions.contains(&function))
    }

    pub fn jwt_secret(&self) -> &str {
        self.jwt_secret.as_deref().unwrap_or(DEV_SECRET)
    }
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
    PersistReservations,
}
