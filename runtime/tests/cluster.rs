//! A Redis Cluster master is killed in the middle of a sale. Its own test binary, since it
//! kills a node of the local cluster (`infra/local-stack.sh --cluster`), which it starts again
//! at the end (test binaries run one after another).
//!
//! Three `ticketd` processes sell 12 categories spread over the three masters to 3,000 fans,
//! each retrying 503s with its own Idempotency-Key; a quarter of the way in, the master of some
//! categories is SIGKILLed and the cluster promotes its replica. Every answer a fan got is then
//! checked against Redis and PostgreSQL.

#[allow(dead_code)] // Shared with the other suites; this binary uses part of it.
#[path = "api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "stack/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "stack/real.rs"]
mod real;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use helpers::{TestApp, body};
use process::Process;
use real::stack_on;

const CATEGORIES: usize = 12;
const STOCK: u32 = 150;
const FANS: usize = 3000;
/// Fans reserving (and paying) at once.
const AT_ONCE: usize = 48;
/// A fan gives up after this many 503s in a row: a pause far past "a few seconds".
const RETRIES: usize = 300;
const RETRY_PAUSE: Duration = Duration::from_millis(100);

fn cluster_ports() -> Vec<u16> {
    (7000..7006).collect()
}

/// The six nodes as seeds, so a killed master is no obstacle to connecting.
fn cluster_nodes() -> Vec<String> {
    cluster_ports()
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect()
}

async fn node(port: u16) -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    client.get_multiplexed_async_connection().await.ok()
}

async fn query<T: redis::FromRedisValue>(port: u16, command: &redis::Cmd) -> Option<T> {
    command.query_async(&mut node(port).await?).await.ok()
}

/// Ports of the nodes that are masters now.
async fn masters() -> Vec<u16> {
    let mut masters = Vec::new();
    for port in cluster_ports() {
        let role: Option<Vec<redis::Value>> = query(port, &redis::cmd("ROLE")).await;
        let is_master = role.and_then(|role| role.into_iter().next()).is_some_and(
            |kind| matches!(kind, redis::Value::BulkString(ref kind) if kind == b"master"),
        );
        if is_master {
            masters.push(port);
        }
    }
    masters
}

/// Starts what is missing of the local cluster (a killed node rejoins as a replica) and waits
/// until every master has a replica in sync.
fn cluster_up() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local-stack.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg("--cluster")
        .status()
        .unwrap();
    assert!(status.success(), "local-stack.sh --cluster failed");
}

/// Brings the killed node back even when the test fails, for the suites that come after.
struct RestartCluster;

impl Drop for RestartCluster {
    fn drop(&mut self) {
        cluster_up();
    }
}

/// Empties the cluster and starts a stack on it.
async fn cluster_stack() -> real::TestStack {
    let nodes = cluster_nodes();
    let client = redis::cluster::ClusterClient::new(nodes.iter().map(|n| format!("redis://{n}")))
        .expect("cluster nodes");
    let mut connection = client.get_async_connection().await.unwrap_or_else(|err| {
        panic!("Redis Cluster at {nodes:?} (infra/local-stack.sh --cluster): {err}")
    });
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    let mut stack = stack_on("failover").await;
    stack.settings.stack.redis_cluster_nodes = nodes;
    stack.settings.stack.redis_wait_timeout_ms = 250;
    stack
}

/// An event with `CATEGORIES` categories that every master has at least two of; returns the
/// event and, per master port, its categories.
async fn spread_event(app: &TestApp) -> (String, BTreeMap<u16, Vec<String>>) {
    let masters = masters().await;
    assert_eq!(masters.len(), 3, "the cluster has three masters");
    for _ in 0..20 {
        let event_id = app.create_event().await;
        for category in 0..CATEGORIES {
            app.add_category(&event_id, &format!("Block {category}"), STOCK, None)
                .await;
        }
        let mut by_master = BTreeMap::new();
        for &port in &masters {
            let keys: Vec<String> = query(
                port,
                redis::cmd("KEYS").arg(format!("*:c:{event_id}:*:stock")),
            )
            .await
            .unwrap_or_default();
            let names = keys
                .iter()
                .filter_map(|key| key.split(':').nth(4).map(str::to_owned))
                .collect();
            by_master.insert(port, names);
        }
        if by_master
            .values()
            .all(|names: &Vec<String>| names.len() >= 2)
        {
            return (event_id, by_master);
        }
    }
    panic!("no event of 20 spread its categories over every master");
}

/// What a fan was answered with 2xx.
#[derive(Debug, Clone)]
struct Answer {
    fan: usize,
    reservation_id: String,
    category: String,
    status: &'static str,
    at: Instant,
}

#[derive(Default)]
struct Log {
    answers: Vec<Answer>,
    /// Non-2xx answers by status.
    refusals: BTreeMap<u16, usize>,
}

/// Sends `request` until it is answered with something other than 503, at most `RETRIES`
/// times; `None` if it never was.
async fn until_not_unavailable(
    request: impl Fn() -> reqwest::RequestBuilder,
    log: &Mutex<Log>,
) -> Option<(StatusCode, Value)> {
    for _ in 0..RETRIES {
        let Ok(response) = request().send().await else {
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        let status = response.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            *log.lock().unwrap().refusals.entry(503).or_default() += 1;
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        return Some((status, body(response).await));
    }
    None
}

/// A fan reserves one ticket of its category with its own Idempotency-Key, retrying 503s;
/// every other fan pays for the hold.
async fn fan(apps: &[TestApp], fan: usize, event_id: &str, log: &Mutex<Log>) {
    let app = &apps[fan % apps.len()];
    let (user, category) = (format!("fan-{fan}"), format!("Block {}", fan % CATEGORIES));
    let token = app.user(&user);
    let key = format!("fan-{fan}-once");
    let request = json!({"event_id": event_id, "category": category, "qty": 1});
    let reserve = || {
        app.client
            .post(app.url("/reserve"))
            .bearer_auth(&token)
            .header("Idempotency-Key", &key)
            .json(&request)
    };
    let Some((status, reply)) = until_not_unavailable(reserve, log).await else {
        panic!("{user}: /reserve answered 503 {RETRIES} times in a row");
    };
    let record = |reservation_id: &str, status: &'static str| {
        log.lock().unwrap().answers.push(Answer {
            fan,
            reservation_id: reservation_id.to_owned(),
            category: category.clone(),
            status,
            at: Instant::now(),
        });
    };
    match status {
        StatusCode::CREATED | StatusCode::OK => {}
        StatusCode::CONFLICT => {
            assert_eq!(reply["error"]["code"], "sold_out", "{user}: {reply}");
            *log.lock().unwrap().refusals.entry(409).or_default() += 1;
            return;
        }
        other => panic!("{user}: /reserve answered {other}: {reply}"),
    }
    let reservation_id = reply["reservation_id"].as_str().unwrap().to_owned();
    record(&reservation_id, "held");
    if fan % 2 == 1 {
        return;
    }
    // Another process than the one that took the hold.
    let payer = &apps[(fan + 1) % apps.len()];
    let confirm = || {
        payer
            .client
            .post(payer.url("/confirm"))
            .bearer_auth(&token)
            .json(&json!({"reservation_id": reservation_id, "payment_ok": true}))
    };
    let Some((status, reply)) = until_not_unavailable(confirm, log).await else {
        panic!("{user}: /confirm answered 503 {RETRIES} times in a row");
    };
    assert_eq!(status, StatusCode::OK, "{user}: /confirm: {reply}");
    assert_eq!(reply["status"], "confirmed", "{user}: {reply}");
    record(&reservation_id, "confirmed");
}

/// The process id of the Redis server on `port`.
async fn pid_of(port: u16) -> String {
    let info: String = query(port, redis::cmd("INFO").arg("server"))
        .await
        .expect("INFO server");
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .expect("a process_id")
        .trim()
        .to_owned()
}

/// Per category, `(total, available, held, sold)` from `/availability`.
async fn availability(app: &TestApp, event_id: &str) -> BTreeMap<String, [u64; 4]> {
    let response = app
        .get(&format!("/events/{event_id}/availability"), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let reply = body(response).await;
    reply["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|category| {
            let count = |field: &str| category[field].as_u64().unwrap();
            (
                category["name"].as_str().unwrap().to_owned(),
                [
                    count("total"),
                    count("available"),
                    count("held"),
                    count("sold"),
                ],
            )
        })
        .collect()
}

/// Per category, `(held, sold)` as PostgreSQL has them (all holds are of one ticket).
async fn stored(db: &tokio_postgres::Client, event_id: &str) -> BTreeMap<String, [u64; 2]> {
    let event_id = uuid::Uuid::parse_str(event_id).unwrap();
    let rows = db
        .query(
            "SELECT category, count(*) FILTER (WHERE status = 'held'), \
                    count(*) FILTER (WHERE status = 'confirmed') \
             FROM reservations WHERE event_id = $1 GROUP BY category",
            &[&event_id],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let count = |index: usize| u64::try_from(row.get::<_, i64>(index)).unwrap();
            (row.get(0), [count(1), count(2)])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_sale_loses_no_answered_change_and_sells_nothing_twice() {
    cluster_up();
    let _restart = RestartCluster;
    let stack = cluster_stack().await;
    let processes = [
        Process::start(&stack.settings).await,
        Process::start(&stack.settings).await,
        Process::start(&stack.settings).await,
    ];
    let apps: Arc<Vec<TestApp>> = Arc::new(
        processes
            .iter()
            .map(|process| TestApp::at(process.addr))
            .collect(),
    );
    let (event_id, by_master) = spread_event(&apps[0]).await;
    // The victim: the master of category "Block 0".
    let (&victim, victim_categories) = by_master
        .iter()
        .find(|(_, names)| names.iter().any(|name| name == "Block 0"))
        .unwrap();
    let victim_categories: BTreeSet<String> = victim_categories.iter().cloned().collect();
    let victim_pid = pid_of(victim).await;

    let log = Arc::new(Mutex::new(Log::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let sale = {
        let (apps, log, done, event_id) =
            (apps.clone(), log.clone(), done.clone(), event_id.clone());
        tokio::spawn(async move {
            futures_util::stream::iter(0..FANS)
                .for_each_concurrent(AT_ONCE, |n| {
                    let (apps, log, done, event_id) = (&apps, &log, &done, &event_id);
                    async move {
                        fan(apps, n, event_id, log).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .await;
        })
    };
    let quarter = tokio::time::timeout(Duration::from_secs(120), async {
        while done.load(Ordering::Relaxed) < FANS / 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        quarter.is_ok(),
        "a quarter of the fans were not served in 2 minutes"
    );
    assert!(!sale.is_finished(), "the sale ended before the kill");
    let status = Command::new("kill")
        .args(["-9", &victim_pid])
        .status()
        .unwrap();
    assert!(status.success());
    let killed = Instant::now();
    let served_at_kill = done.load(Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(300), sale)
        .await
        .expect("the sale ends within 5 minutes")
        .expect("no fan panicked");
    let after_promotion = masters().await;
    assert!(
        !after_promotion.contains(&victim) && after_promotion.len() == 3,
        "a replica took the killed master's place: masters now {after_promotion:?}"
    );

    let log = std::mem::take(&mut *log.lock().unwrap());
    // The pause: on the killed master's categories, the longest time without a 2xx from
    // the kill on (answers in flight at the kill may still arrive just after it).
    let mut victim_times: Vec<Instant> = log
        .answers
        .iter()
        .filter(|answer| victim_categories.contains(&answer.category))
        .map(|answer| answer.at)
        .collect();
    victim_times.sort();
    assert!(
        victim_times
            .iter()
            .any(|at| *at > killed + Duration::from_secs(1)),
        "no answer on the killed master's categories after the kill"
    );
    let pause = victim_times
        .windows(2)
        .filter(|pair| pair[1] > killed)
        .map(|pair| pair[1] - pair[0].max(killed))
        .max()
        .unwrap_or_default();
    eprintln!(
        "failover: master 127.0.0.1:{victim} killed after {served_at_kill} of {FANS} fans; \
         its {} categories paused {:.2} s; answers {:?} besides {} 2xx",
        victim_categories.len(),
        pause.as_secs_f64(),
        log.refusals,
        log.answers.len()
    );
    assert!(pause < Duration::from_secs(15), "a pause of {pause:?}");

    // Redis: every category whole, nothing sold past its stock; no more holds than answered.
    let on_redis = availability(&apps[0], &event_id).await;
    assert_eq!(on_redis.len(), CATEGORIES);
    for (name, [total, available, held, sold]) in &on_redis {
        assert_eq!(available + held + sold, *total, "{name}: {on_redis:?}");
        assert!(sold <= total, "{name}");
    }
    let answered: BTreeMap<&str, &Answer> = log
        .answers
        .iter()
        .map(|answer| (answer.reservation_id.as_str(), answer))
        .collect();
    let answered_per_category = |name: &str| {
        answered
            .values()
            .filter(|answer| answer.category == name)
            .count() as u64
    };
    for (name, [_, _, held, sold]) in &on_redis {
        assert_eq!(
            held + sold,
            answered_per_category(name),
            "{name}: Redis counts a hold no fan was answered, or lost one"
        );
    }

    // PostgreSQL agrees with Redis once the relay and the consumers are through.
    let db = stack.postgres().await;
    let want: BTreeMap<String, [u64; 2]> = on_redis
        .iter()
        .map(|(name, [_, _, held, sold])| (name.clone(), [*held, *sold]))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut in_postgres = stored(&db, &event_id).await;
    while in_postgres != want && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        in_postgres = stored(&db, &event_id).await;
    }
    assert_eq!(in_postgres, want, "PostgreSQL against Redis");

    // Every answered change is in PostgreSQL in that state or a later one; one row a fan.
    let event_uuid = uuid::Uuid::parse_str(&event_id).unwrap();
    let rows = db
        .query(
            "SELECT id::text, user_id, status FROM reservations WHERE event_id = $1",
            &[&event_uuid],
        )
        .await
        .unwrap();
    let rows: BTreeMap<String, (String, String)> = rows
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    for answer in &log.answers {
        let (_, status) = rows
            .get(&answer.reservation_id)
            .unwrap_or_else(|| panic!("answered but not stored: {answer:?}"));
        let later = match answer.status {
            "confirmed" => status == "confirmed",
            _ => status == "held" || status == "confirmed",
        };
        assert!(later, "{answer:?} is stored as {status}");
    }
    let mut per_fan: BTreeMap<&str, usize> = BTreeMap::new();
    for (user, _) in rows.values() {
        *per_fan.entry(user.as_str()).or_default() += 1;
    }
    assert!(
        per_fan.values().all(|rows| *rows == 1),
        "a fan with two reservations: {:?}",
        per_fan
            .iter()
            .filter(|(_, rows)| **rows > 1)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rows.len(),
        answered.len(),
        "every stored reservation was answered"
    );
    let fans: BTreeSet<usize> = log.answers.iter().map(|answer| answer.fan).collect();
    assert_eq!(fans.len(), answered.len(), "one reservation a fan");

    for process in processes {
        process.stop().await;
    }
    stack.drop_database().await;
}
