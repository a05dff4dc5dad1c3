//! The real stack for end-to-end tests: Redis, PostgreSQL and the Kafka-API broker that
//! `infra/local-stack.sh` starts (or whatever `REDIS_URL`, `DATABASE_URL`, `KAFKA_BROKERS` name).
//! Each test gets its own Redis database and Kafka topic, so tests running at once never relay
//! or consume each other's events; PostgreSQL is shared and read by event id.

use std::collections::BTreeMap;
use std::time::Duration;

use ticketd::Settings;
use ticketd::config::StackSettings;
use tokio_postgres::NoTls;

use crate::helpers::settings;

pub fn redis_base() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/ticketd".into())
}

pub fn kafka_brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// The real stack of one test: its Redis database, PostgreSQL database and Kafka topic.
pub struct TestStack {
    pub settings: Settings,
    pub database: String,
}

impl TestStack {
    /// Drops the test's PostgreSQL database (a failed test leaves it, for a look).
    pub async fn drop_database(self) {
        let admin = connect(&database_url()).await;
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
        admin.batch_execute(&drop).await.unwrap();
    }

    pub fn database_url(&self) -> &str {
        self.settings
            .stack
            .database_url
            .as_ref()
            .map(|url| url.expose())
            .unwrap_or_default()
    }

    pub fn redis_url(&self) -> &str {
        let url = self.settings.stack.redis_url.as_ref();
        url.map(|url| url.expose()).unwrap_or_default()
    }

    pub async fn postgres(&self) -> tokio_postgres::Client {
        connect(self.database_url()).await
    }
}

/// A real stack on Redis database `redis_db` (1 to 15, one per test) emptied first, a fresh
/// PostgreSQL database, and a Kafka topic and group of the test's own.
pub async fn stack(redis_db: u8, test: &str) -> TestStack {
    let redis_url = format!("{}/{redis_db}", redis_base());
    let client = redis::Client::open(redis_url.as_str()).expect("REDIS_URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("Redis at {redis_url} (infra/local-stack.sh): {err}"));
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    let mut stack = stack_on(test).await;
    stack.settings.stack.redis_url = Some(redis_url.into());
    stack
}

/// A fresh PostgreSQL database and a Kafka topic and group for `test`; Redis is the caller's.
pub async fn stack_on(test: &str) -> TestStack {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let database = format!("ticketd_{test}_{run}");
    let admin = connect(&database_url()).await;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{database}\""))
        .await
        .unwrap();
    let (server, _) = database_url()
        .rsplit_once('/')
        .map(|(s, d)| (s.to_owned(), d.to_owned()))
        .unwrap();
    let topic = format!("reservations-{test}-{run}");
    let settings = Settings {
        stack: StackSettings {
            redis_url: None,
            redis_cluster_nodes: Vec::new(),
            redis_wait_replicas: None,
            redis_wait_timeout_ms: 500,
            database_url: Some(format!("{server}/{database}").into()),
            kafka_brokers: Some(kafka_brokers()),
            kafka_group: format!("{topic}-persist"),
            kafka_topic: topic,
            db_pool_size: 4,
        },
        ..settings()
    };
    TestStack { settings, database }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {url} (infra/local-stack.sh): {err}"));
    tokio::spawn(connection);
    client
}

/// Stored reservations of an event: status -> how many rows.
pub async fn stored_statuses(db: &tokio_postgres::Client, event_id: &str) -> BTreeMap<String, i64> {
    let event_id = uuid::Uuid::parse_str(event_id).unwrap();
    let rows = db
        .query(
            "SELECT status, count(*) FROM reservations WHERE event_id = $1 GROUP BY status",
            &[&event_id],
        )
        .await
        .unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// Waits up to `within` for PostgreSQL to hold exactly `expected` for the event.
pub async fn until_stored(
    db: &tokio_postgres::Client,
    event_id: &str,
    expected: &[(&str, i64)],
    within: Duration,
) -> BTreeMap<String, i64> {
    let expected: BTreeMap<String, i64> = expected
        .iter()
        .map(|(status, count)| (status.to_string(), *count))
        .collect();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let stored = stored_statuses(db, event_id).await;
        if stored == expected || tokio::time::Instant::now() >= deadline {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
