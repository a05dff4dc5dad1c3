//! The load of `infra/bench/soak.sh`: one long sale against a running `ticketd` on the real
//! stack, then what it left behind. Not a test of its own: soak.sh starts the stack, this
//! drives it and reports, and exits non-zero when a target is missed.
//!
//! 1. An event with `SOAK_CATEGORIES` categories of `SOAK_STOCK` tickets each.
//! 2. `SOAK_REQUESTS` reserves from `SOAK_WORKERS` concurrent fans; of the holds made, half
//!    are paid, a quarter cancelled, a quarter left to expire; a fifth of the reserves carry
//!    an Idempotency-Key. Categories sell out, so most reserves are refused `sold_out`.
//! 3. Waits until Redis holds no hold (every finished hold past its retention and stored).
//! 4. Checks that PostgreSQL holds exactly the states the fans were answered.
//! 5. Measures Redis's idle commands per second, with these categories and with
//!    `SOAK_IDLE_CATEGORIES` in all.
//!
//! Reads BASE_URL, JWT_SECRET, REDIS_URL (the server's own: its memory and command counts
//! are read), DATABASE_URL, and the SOAK_* knobs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth::Jwt;
use domain::{Role, UserId};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

type Answers = Arc<Mutex<HashMap<String, &'static str>>>;

struct Soak {
    client: Client,
    base: String,
    jwt: Jwt,
    admin: String,
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is required"))
}

impl Soak {
    fn token(&self, fan: u64) -> String {
        let user = UserId::parse(&format!("fan-{fan}")).expect("a user id");
        self.jwt
            .issue(Role::User, &user, Duration::from_secs(4 * 3600))
            .expect("a token")
    }

    async fn post(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("ticketd answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An event with `count` categories named `C<n>`, from `first` on.
    async fn categories(&self, event: &str, first: u64, count: u64, stock: u64) {
        let path = &format!("/events/{event}/ticket-category");
        let mut added = Vec::new();
        for n in first..first + count {
            let body = json!({"name": format!("C{n}"), "total_stock": stock, "price": 10});
            added.push(async move { self.post(path, &self.admin, &body, None).await.0 });
            if added.len() == 64 || n + 1 == first + count {
                for status in futures_util::future::join_all(added.drain(..)).await {
                    assert_eq!(status, StatusCode::CREATED);
                }
            }
        }
    }
}

/// How a sale is run.
#[derive(Clone, Copy)]
struct Shape {
    requests: u64,
    categories: u64,
    workers: u64,
    fans: u64,
}

impl Soak {
    /// An event with `categories` categories of `stock`; returns its id.
    async fn event(&self, name: &str, categories: u64, stock: u64) -> String {
        let event = json!({"name": name, "date": "2031-01-01T20:00:00Z"});
        let (status, created) = self.post("/events", &self.admin, &event, None).await;
        assert_eq!(status, StatusCode::CREATED);
        let event_id = created["id"].as_str().expect("an id").to_owned();
        self.categories(&event_id, 0, categories, stock).await;
        event_id
    }

    /// `shape.requests` reserves from `shape.workers` concurrent fans: half the holds paid,
    /// a quarter cancelled, a quarter left to expire; a fifth with an Idempotency-Key.
    /// Returns the state each hold's fan was told it ended in, and every reserve's answer.
    async fn sale(
        self: &Arc<Self>,
        event_id: &str,
        shape: &Shape,
    ) -> (HashMap<String, &'static str>, HashMap<String, u64>) {
        let sent = Arc::new(AtomicU64::new(0));
        let answers: Answers = Arc::default();
        let tally: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let mut tasks = Vec::new();
        for worker in 0..shape.workers {
            let (soak, sent, answers, tally) =
                (self.clone(), sent.clone(), answers.clone(), tally.clone());
            let (event_id, shape) = (event_id.to_owned(), *shape);
            tasks.push(tokio::spawn(async move {
                let mut n = worker;
                while sent.fetch_add(1, Ordering::Relaxed) < shape.requests {
                    n = n
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let fan = (n >> 20) % shape.fans;
                    let category = (n >> 40) % shape.categories;
                    let token = soak.token(fan);
                    let key = ((n >> 8) % 5 == 0).then(|| format!("order-{n}"));
                    let body =
                        json!({"event_id": event_id, "category": format!("C{category}"), "qty": 1});
                    let (status, reply) =
                        soak.post("/reserve", &token, &body, key.as_deref()).await;
                    let answer = match status {
                        StatusCode::CREATED => "held".to_owned(),
                        _ => reply["error"]["code"].as_str().unwrap_or("?").to_owned(),
                    };
                    *tally.lock().await.entry(answer).or_default() += 1;
                    if status != StatusCode::CREATED {
                        continue;
                    }
                    let id = reply["reservation_id"].as_str().expect("an id").to_owned();
                    let final_state = match (n >> 50) % 4 {
                        0 | 1 => settle(&soak, &token, &id, true).await,
                        2 => settle(&soak, &token, &id, false).await,
                        _ => "expired",
                    };
                    answers.lock().await.insert(id, final_state);
                }
            }));
        }
        for task in tasks {
            task.await.expect("a worker");
        }
        let answers = Arc::try_unwrap(answers).expect("workers done").into_inner();
        let tally = tally.lock().await.clone();
        (answers, tally)
    }
}

async fn redis_info(redis: &mut redis::aio::MultiplexedConnection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").query_async(redis).await.expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO has no {field}"))
}

/// `MEMORY STATS`' top-level numbers, by name.
async fn memory_stats(redis: &mut redis::aio::MultiplexedConnection) -> HashMap<String, i64> {
    let stats: Vec<redis::Value> = redis::cmd("MEMORY")
        .arg("STATS")
        .query_async(redis)
        .await
        .expect("MEMORY STATS");
    stats
        .chunks_exact(2)
        .filter_map(|pair| {
            let name: String = redis::from_redis_value(pair[0].clone()).ok()?;
            let value: i64 = redis::from_redis_value(pair[1].clone()).ok()?;
            Some((name, value))
        })
        .collect()
}

async fn keys(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("DBSIZE")
        .query_async(redis)
        .await
        .expect("DBSIZE")
}

/// Holds Redis still keeps, live or finished, over every shard (whatever the shards' tags).
async fn holds_in_redis(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let shards: Vec<String> = redis::cmd("KEYS")
        .arg("{s*}:holds")
        .query_async(redis)
        .await
        .expect("KEYS");
    let mut total = 0;
    for holds in shards {
        let count: u64 = redis::cmd("HLEN")
            .arg(holds)
            .query_async(redis)
            .await
            .expect("HLEN");
        total += count;
    }
    total
}

/// Waits until every hold has ended, been stored and waited out its retention.
async fn drained(redis: &mut redis::aio::MultiplexedConnection, within: Duration) {
    let deadline = Instant::now() + within;
    while holds_in_redis(redis).await > 0 {
        assert!(
            Instant::now() < deadline,
            "Redis still keeps holds after {within:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Commands Redis processes per second over `window`, nothing else sending.
async fn idle_commands(redis: &mut redis::aio::MultiplexedConnection, window: Duration) -> f64 {
    let before = redis_info(redis, "total_commands_processed").await;
    tokio::time::sleep(window).await;
    let after = redis_info(redis, "total_commands_processed").await;
    // Our own two INFO calls are not ticketd's.
    (after - before).saturating_sub(1) as f64 / window.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let requests = knob("SOAK_REQUESTS", 1_000_000);
    let categories = knob("SOAK_CATEGORIES", 1_000);
    let stock = knob("SOAK_STOCK", 45);
    let workers = knob("SOAK_WORKERS", 64);
    let fans = knob("SOAK_FANS", 200_000);
    let idle_categories = knob("SOAK_IDLE_CATEGORIES", 10_000);
    let settle_within = Duration::from_secs(knob("SOAK_SETTLE_SECS", 300));
    let jwt = Jwt::new(required("JWT_SECRET").as_bytes());
    let admin = jwt
        .issue(
            Role::Admin,
            &UserId::parse("ops").expect("id"),
            Duration::from_secs(4 * 3600),
        )
        .expect("token");
    let soak = Arc::new(Soak {
        client: Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client"),
        base: required("BASE_URL"),
        jwt,
        admin,
    });
    let redis_client = redis::Client::open(required("REDIS_URL")).expect("REDIS_URL");
    let mut redis = redis_client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let (db, connection) =
        tokio_postgres::connect(&required("DATABASE_URL"), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL");
    tokio::spawn(connection);

    let shape = Shape {
        requests,
        categories,
        workers,
        fans,
    };
    let event_id = soak.event("Soak", categories, stock).await;
    let warm_up = soak.event("Warm-up", categories, stock).await;
    // A small sale first, waited out: what any sale leaves for good (scripts, connections,
    // buffers, the shards' streams) is then in "before", and only growth with the history
    // of the sale shows as growth.
    let warm_up_requests = (requests / 20).max(2_000);
    soak.sale(
        &warm_up,
        &Shape {
            requests: warm_up_requests,
            ..shape
        },
    )
    .await;
    drained(&mut redis, settle_within).await;
    let memory_before = redis_info(&mut redis, "used_memory").await;
    let dataset_before = redis_info(&mut redis, "used_memory_dataset").await;
    let stats_before = memory_stats(&mut redis).await;
    let keys_before = keys(&mut redis).await;
    println!(
        "soak: {categories} categories of {stock}, after a warm-up sale of {warm_up_requests} reserves; Redis before: used_memory {memory_before} B, {keys_before} keys"
    );

    let peak = Arc::new(AtomicU64::new(memory_before));
    let sampler = {
        let (peak, mut redis) = (peak.clone(), redis.clone());
        tokio::spawn(async move {
            loop {
                let used = redis_info(&mut redis, "used_memory").await;
                peak.fetch_max(used, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let started = Instant::now();
    let (answers, tally) = soak.sale(&event_id, &shape).await;
    let elapsed = started.elapsed();
    println!(
        "soak: {requests} reserves in {:.0} s ({:.0}/s); answers {tally:?}; {} holds",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        answers.len()
    );

    drained(&mut redis, settle_within).await;
    sampler.abort();
    let memory_after = redis_info(&mut redis, "used_memory").await;
    let dataset_after = redis_info(&mut redis, "used_memory_dataset").await;
    let keys_after = keys(&mut redis).await;
    let memory_peak = peak.load(Ordering::Relaxed);
    let grown = memory_after as f64 / memory_before as f64 - 1.0;
    println!(
        "soak: Redis used_memory before {memory_before} B, peak {memory_peak} B, after retention {memory_after} B ({:+.1} %); dataset {dataset_before} B / {dataset_after} B; keys {keys_before} / {keys_after}",
        grown * 100.0
    );

    // Where memory moved, by MEMORY STATS' own account.
    let stats_after = memory_stats(&mut redis).await;
    let mut moved: Vec<(i64, &String)> = stats_after
        .iter()
        .map(|(name, after)| (after - stats_before.get(name).copied().unwrap_or(0), name))
        .filter(|(delta, _)| delta.abs() >= 4096)
        .collect();
    moved.sort_unstable_by_key(|(delta, _)| std::cmp::Reverse(delta.abs()));
    println!("soak: MEMORY STATS moved (bytes): {moved:?}");

    // What is left besides the categories' stock, largest first.
    let mut left = Vec::new();
    let all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    for key in all.iter().filter(|key| !key.ends_with(":stock")) {
        let bytes: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap_or(0);
        left.push((bytes, key.clone()));
    }
    left.sort_unstable_by(|a, b| b.cmp(a));
    left.truncate(8);
    println!("soak: largest keys left besides stock: {left:?}");

    // PostgreSQL has exactly what the fans were told.
    let rows = db
        .query(
            "SELECT id::text, status FROM reservations WHERE event_id = $1::text::uuid",
            &[&event_id],
        )
        .await
        .expect("reservations");
    let stored: HashMap<String, String> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let disagree = answers
        .iter()
        .filter(|(id, state)| stored.get(*id).map(String::as_str) != Some(**state))
        .count();
    let unknown = stored
        .keys()
        .filter(|id| !answers.contains_key(*id))
        .count();
    println!(
        "soak: PostgreSQL {} rows for {} answered holds: {disagree} disagree, {unknown} never answered",
        stored.len(),
        answers.len()
    );

    let idle_small = idle_commands(&mut redis, Duration::from_secs(10)).await;
    soak.categories(
        &event_id,
        categories,
        idle_categories.saturating_sub(categories),
        stock,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_large = idle_commands(&mut redis, Duration::from_secs(10)).await;
    println!(
        "soak: idle Redis commands/s: {idle_small:.1} with {categories} categories, {idle_large:.1} with {} categories",
        idle_categories.max(categories)
    );

    let mut failed = Vec::new();
    if disagree > 0 || unknown > 0 {
        failed.push("PostgreSQL disagrees with the answers");
    }
    if grown > 0.10 {
        failed.push("Redis memory after retention is over 10 % above before the sale");
    }
    if idle_large >= 200.0 {
        failed.push("200 or more idle Redis commands a second");
    }
    if failed.is_empty() {
        println!("soak: every target met");
    } else {
        eprintln!("soak: FAILED: {}", failed.join("; "));
        std::process::exit(1);
    }
}

/// Pays for or cancels a hold; returns the state the fan was told it ended in.
async fn settle(soak: &Soak, token: &str, id: &str, pay: bool) -> &'static str {
    let body = json!({"reservation_id": id, "payment_ok": pay});
    match soak.post("/confirm", token, &body, None).await.0 {
        StatusCode::OK if pay => "confirmed",
        StatusCode::OK => "cancelled",
        StatusCode::GONE => "expired",
        other => panic!("confirm answered {other}"),
    }
}
