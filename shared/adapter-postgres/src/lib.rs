//! PostgreSQL (tokio-postgres pooled by bb8, no TLS): the catalogue and the reservation store.
//!
//! PostgreSQL is the durable record: the catalogue lives only here, and persist-reservations
//! writes every reservation change here so `ticketd reconcile` can rebuild Redis from it.

mod catalogue;
mod ping;
mod reservations;

use std::error::Error as StdError;
use std::time::Duration;

use bb8::{ErrorSink, Pool, PooledConnection, RunError};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::config::Host;
use tokio_postgres::types::FromSql;
use tokio_postgres::{Config, NoTls, Row};

use domain::error::StoreError;
use telemetry::DB_OPEN_CONNECTIONS;

type Manager = PostgresConnectionManager<NoTls>;

/// The schema, in order. Each is applied once and recorded in `schema_migrations` by name;
/// never edit one that has shipped, add the next number instead.
const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_catalogue_and_reservations",
    include_str!("../migrations/0001_catalogue_and_reservations.sql"),
)];

/// Key of the advisory lock that serialises migrations ("ticketd" in ASCII): two processes
/// starting at once would otherwise both see a migration as missing and both apply it.
const MIGRATION_LOCK: i64 = 0x0074_6963_6b65_7464;

/// How long a caller waits for a pooled connection before the store counts as unavailable.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL adapter: a pool of connections, cheap to share behind an `Arc`.
pub struct Postgres {
    pool: Pool<Manager>,
}

impl Postgres {
    /// Builds the pool and opens one connection right away, so a wrong URL, a refused
    /// connection or bad credentials fail at start-up with the reason (never the password).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // The parser's messages name options, not values, so the URL cannot leak through them.
        let config: Config = url
            .parse()
            .map_err(|err| describe("invalid PostgreSQL URL", &err))?;
        let target = target(&config);
        let pool = Pool::builder()
            // bb8 panics on a pool of size 0.
            .max_size(max_connections.max(1))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .error_sink(Box::new(LogErrors))
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        // The pool itself would retry quietly until its timeout and report only that.
        let client = pool
            .dedicated_connection()
            .await
            .map_err(|err| describe(&format!("cannot connect to PostgreSQL at {target}"), &err))?;
        // Kept as the pool's first connection; if the pool refuses it (full or broken), it is
        // simply closed.
        let _ = pool.add(client);
        let store = Self { pool };
        store.open_connections();
        Ok(store)
    }

    /// Applies the migrations not yet recorded, in one transaction under an advisory lock,
    /// so it is safe to call from every process at start-up, at the same time.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|err| describe("migrate: begin", &err))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|err| describe("migrate: lock", &err))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    text        PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|err| describe("migrate: create schema_migrations", &err))?;
        let applied: Vec<String> = tx
            .query("SELECT version FROM schema_migrations", &[])
            .await
            .map_err(|err| describe("migrate: read schema_migrations", &err))?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(|err| describe("migrate: read schema_migrations", &err))?;
        for (version, sql) in MIGRATIONS {
            if applied.iter().any(|done| done == version) {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(|err| describe(&format!("migrate: apply {version}"), &err))?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(|err| describe(&format!("migrate: record {version}"), &err))?;
            tracing::info!(version, "applied migration");
        }
        tx.commit()
            .await
            .map_err(|err| describe("migrate: commit", &err))
    }

    /// Connections the pool holds now (idle or in use); also published as a gauge.
    pub fn open_connections(&self) -> u32 {
        let open = self.pool.state().connections;
        DB_OPEN_CONNECTIONS.set(i64::from(open));
        open
    }

    async fn conn(&self) -> Result<PooledConnection<'_, Manager>, StoreError> {
        self.pool.get().await.map_err(|err| match err {
            RunError::User(err) => describe("cannot connect to PostgreSQL", &err),
            RunError::TimedOut => StoreError(format!(
                "postgres: no connection available within {CHECKOUT_TIMEOUT:?}"
            )),
        })
    }
}

/// `user@host:port/dbname`, for messages: everything that locates the database but the password.
fn target(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let ports = config.get_ports();
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        // libpq's rule: the database defaults to the user's name.
        config.get_dbname().or(config.get_user()).unwrap_or("?"),
    )
}

/// A `StoreError` with the whole chain of causes: tokio-postgres puts the server's message
/// (and the SQLSTATE detail) in the source, not in its own `Display`.
fn describe(what: &str, err: &(dyn StdError + 'static)) -> StoreError {
    let mut message = format!("postgres: {what}: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError(message)
}

/// A row that does not parse back into the domain: the data is wrong, not the code.
fn bad_row(table: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError(format!("postgres: invalid row in {table}: {reason}"))
}

/// One column of `row`; a missing column or an unexpected type is a `StoreError`, not a panic.
fn column<'a, T: FromSql<'a>>(row: &'a Row, table: &str, name: &str) -> Result<T, StoreError> {
    row.try_get(name)
        .map_err(|err| describe(&format!("invalid row in {table}"), &err))
}

/// Logs the errors of connections the pool opens in the background, which no caller sees.
#[derive(Debug, Clone, Copy)]
struct LogErrors;

impl ErrorSink<tokio_postgres::Error> for LogErrors {
    fn sink(&self, err: tokio_postgres::Error) {
        tracing::warn!(error = %describe("pool", &err), "PostgreSQL connection failed");
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<tokio_postgres::Error>> {
        Box::new(*self)
    }
}
