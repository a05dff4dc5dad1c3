//! Black-box tests of a deployed `ticketd`, through its published address only: the whole
//! flow, a 2,000-for-500 race, and (per-function profile) the reserve container killed and
//! restarted in the middle of a load. `infra/compose-test.sh` runs them against each profile
//! of `infra/docker-compose.yml`, with:
//!
//! - `TICKETD_URL`: the API (default `http://127.0.0.1:8080`);
//! - `JWT_SECRET`: the stack's secret, to sign tokens (default the development one);
//! - `RESERVATION_TTL`: the stack's hold duration in seconds (keep it short: the flow waits
//!   for an expiry);
//! - `DEPLOYED_PSQL`: a command, as words, that runs `psql` on the stack's database and takes
//!   `-c SQL` after it (e.g. `docker exec ID psql -U ticketd -d ticketd -XqtA`);
//! - `DEPLOYED_KILL_RESERVE`, `DEPLOYED_AWAIT_RESERVE`: shell commands that kill the reserve
//!   container's process (SIGKILL, as a crash) and wait until it runs again, for the restart
//!   test only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth::Jwt;
use domain::Role;
use domain::UserId;
use futures_util::future::join_all;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// A client of the deployed API, signing its own tokens with the stack's secret.
struct Api {
    base: String,
    client: Client,
    jwt: Jwt,
    admin: String,
}

/// An answer: its status and JSON body (`Null` when there is none).
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Api {
    fn from_env() -> Arc<Self> {
        let base = std::env::var("TICKETD_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
        let secret = std::env::var("JWT_SECRET").unwrap_or_else(|_| "dev-secret".into());
        let jwt = Jwt::new(secret.as_bytes());
        let admin = issue(&jwt, Role::Admin, "ops");
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Arc::new(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
            jwt,
            admin,
        })
    }

    fn user(&self, name: &str) -> String {
        issue(&self.jwt, Role::User, name)
    }

    /// Sends a request; `Err` when no HTTP answer came back (refused, reset, timed out).
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.send(Method::POST, path, Some(token), Some(body), None)
            .await
            .unwrap_or_else(|err| panic!("POST {path}: {err}"))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(Method::GET, path, token, None, None)
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }

    /// A new event with one category "Floor" of `total` tickets; returns the event id.
    async fn event_with_floor(&self, total: u32, max_per_user: Option<u32>) -> String {
        let event = json!({"name": "Night Show", "date": "2030-06-01T20:00:00Z", "venue": "Arena"});
        let created = self.post("/events", &self.admin, &event).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let event_id = created.body["id"].as_str().expect("an event id").to_owned();
        let mut floor = json!({"name": "Floor", "total_stock": total, "price": 49.99});
        if let Some(max) = max_per_user {
            floor["max_per_user"] = json!(max);
        }
        let path = format!("/events/{event_id}/ticket-category");
        let added = self.post(&path, &self.admin, &floor).await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
        event_id
    }

    async fn reserve(&self, user: &str, event_id: &str, qty: u32, key: Option<&str>) -> Answer {
        let request = json!({"event_id": event_id, "category": "Floor", "qty": qty});
        let token = self.user(user);
        self.send(Method::POST, "/reserve", Some(&token), Some(&request), key)
            .await
            .unwrap_or_else(|err| panic!("POST /reserve: {err}"))
    }

    /// Reserves one ticket with an Idempotency-Key, retrying what got no answer (see
    /// [`until_answered`]).
    async fn reserve_until_answered(
        &self,
        user: &str,
        event_id: &str,
        key: &str,
        within: Duration,
        retries: &AtomicUsize,
    ) -> Answer {
        let token = self.user(user);
        let request = json!({"event_id": event_id, "category": "Floor", "qty": 1});
        let send = || {
            self.send(
                Method::POST,
                "/reserve",
                Some(&token),
                Some(&request),
                Some(key),
            )
        };
        until_answered(send, within, retries).await
    }

    /// Reserves and returns the new hold's id.
    async fn hold(&self, user: &str, event_id: &str, qty: u32) -> String {
        let answer = self.reserve(user, event_id, qty, None).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body["reservation_id"]
            .as_str()
            .expect("a reservation id")
            .to_owned()
    }

    async fn confirm(&self, user: &str, reservation_id: &str, payment_ok: bool) -> Answer {
        let request = json!({"reservation_id": reservation_id, "payment_ok": payment_ok});
        self.post("/confirm", &self.user(user), &request).await
    }

    /// The "Floor" counters as (total, available, held, sold), checking the invariant.
    async fn floor(&self, event_id: &str) -> (u64, u64, u64, u64) {
        let answer = self
            .get(&format!("/events/{event_id}/availability"), None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let floor = &answer.body["categories"][0];
        let count = |field: &str| floor[field].as_u64().expect("a count");
        let counts = (
            count("total"),
            count("available"),
            count("held"),
            count("sold"),
        );
        assert_eq!(counts.1 + counts.2 + counts.3, counts.0, "{floor}");
        counts
    }
}

fn issue(jwt: &Jwt, role: Role, sub: &str) -> String {
    let sub = UserId::parse(sub).expect("a user id");
    jwt.issue(role, &sub, Duration::from_secs(3600))
        .expect("a token")
}

fn ttl() -> Duration {
    let seconds = std::env::var("RESERVATION_TTL")
        .ok()
        .and_then(|ttl| ttl.parse().ok())
        .unwrap_or(600);
    assert!(
        seconds <= 30,
        "RESERVATION_TTL={seconds}: start the stack with a short TTL (the flow waits for it)"
    );
    Duration::from_secs(seconds)
}

/// Runs `sql` with the stack's `psql` (`DEPLOYED_PSQL`); returns its unaligned output.
fn psql(sql: &str) -> String {
    let command = std::env::var("DEPLOYED_PSQL").expect("DEPLOYED_PSQL: how to run psql");
    let mut words = command.split_whitespace();
    let program = words.next().expect("a command in DEPLOYED_PSQL");
    let output = Command::new(program)
        .args(words)
        .arg("-c")
        .arg(sql)
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 from psql")
}

/// Stored reservations of an event in PostgreSQL: status -> rows.
fn stored(event_id: &str) -> BTreeMap<String, u64> {
    uuid::Uuid::parse_str(event_id).expect("an event id");
    let sql = format!(
        "SELECT status || ',' || count(*) FROM reservations \
         WHERE event_id = '{event_id}' GROUP BY status"
    );
    psql(&sql)
        .lines()
        .filter_map(|line| line.split_once(','))
        .map(|(status, count)| (status.to_owned(), count.parse().expect("a count")))
        .collect()
}

/// Waits up to `within` for PostgreSQL to hold exactly `expected` for the event.
async fn until_stored(
    event_id: &str,
    expected: &[(&str, u64)],
    within: Duration,
) -> BTreeMap<String, u64> {
    let expected: BTreeMap<String, u64> = expected
        .iter()
        .map(|(status, count)| ((*status).to_owned(), *count))
        .collect();
    let deadline = Instant::now() + within;
    loop {
        let stored = stored(event_id);
        if stored == expected || Instant::now() >= deadline {
            assert_eq!(stored, expected, "final states in PostgreSQL");
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Holds, payments, a cancellation, an idempotent retry and an expiry, as the README's
/// walkthrough does them; PostgreSQL ends with exactly the final states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by infra/compose-test.sh against a running compose stack"]
async fn the_whole_flow_reaches_postgres() {
    let ttl = ttl();
    let api = Api::from_env();
    assert_eq!(api.get("/health", None).await.status, StatusCode::OK);
    let no_token = api
        .send(Method::POST, "/events", None, Some(&json!({})), None)
        .await
        .expect("an answer");
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);

    let event_id = api.event_with_floor(20, Some(4)).await;
    assert_eq!(api.floor(&event_id).await, (20, 20, 0, 0));
    let paid = [
        ("ann", api.hold("ann", &event_id, 2).await),
        ("bob", api.hold("bob", &event_id, 1).await),
    ];
    let unpaid = api.hold("cat", &event_id, 1).await;
    let first = api.reserve("eve", &event_id, 1, Some("order-7")).await;
    let again = api.reserve("eve", &event_id, 1, Some("order-7")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        again.body, first.body,
        "an idempotent retry holds nothing more"
    );
    let eve = first.body["reservation_id"].as_str().unwrap().to_owned();
    let expiring = api.hold("dan", &event_id, 3).await;
    let over_limit = api.reserve("dan", &event_id, 2, None).await;
    assert_eq!(over_limit.status, StatusCode::CONFLICT);
    assert_eq!(over_limit.body["error"]["code"], "limit_exceeded");

    for (user, id) in paid.iter().chain([&("eve", eve.clone())]) {
        let confirmed = api.confirm(user, id, true).await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
        assert_eq!(confirmed.body["status"], "confirmed");
    }
    let cancelled = api.confirm("cat", &unpaid, false).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(api.floor(&event_id).await, (20, 13, 3, 4));
    let own = api
        .get(&format!("/reservations/{eve}"), Some(&api.user("eve")))
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["status"], "confirmed");
    let someone_elses = api
        .get(&format!("/reservations/{eve}"), Some(&api.user("bob")))
        .await;
    assert_eq!(someone_elses.status, StatusCode::NOT_FOUND);

    // dan's hold expires one TTL after it was made; the sweeper runs every 250 ms.
    tokio::time::sleep(ttl + Duration::from_millis(1500)).await;
    assert_eq!(api.floor(&event_id).await, (20, 16, 0, 4));
    let late = api.confirm("dan", &expiring, true).await;
    assert_eq!(late.status, StatusCode::GONE);
    assert_eq!(late.body["error"]["code"], "expired");

    let expected = [("cancelled", 1), ("confirmed", 3), ("expired", 1)];
    until_stored(&event_id, &expected, Duration::from_secs(60)).await;
    let sold = psql(&format!(
        "SELECT coalesce(sum(qty), 0) FROM reservations \
         WHERE event_id = '{event_id}' AND status = 'confirmed'"
    ));
    assert_eq!(sold.trim(), "4");
}

/// The waiting room through the deployed address: set up, join, watch the stream until
/// admitted, reserve with the admission; without one, 403.
#[tokio::test]
#[ignore = "run by infra/compose-test.sh against a running compose stack"]
async fn a_fan_waits_in_the_room_then_reserves() {
    let api = Api::from_env();
    let event_id = api.event_with_floor(10, None).await;
    let settings = json!({"enabled": true, "admit_per_second": 5, "admission_ttl": 60});
    let room = format!("/events/{event_id}/waiting-room");
    let set = api
        .send(Method::PUT, &room, Some(&api.admin), Some(&settings), None)
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let fan = api.user("room-fan");
    let joined = api
        .post(&format!("/events/{event_id}/queue"), &fan, &json!(null))
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let refused = api.reserve("room-fan", &event_id, 1, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    // The stream, through the gateway where there is one, until the fan is admitted.
    let mut stream = api
        .client
        .get(format!("{}/events/{event_id}/queue/stream", api.base))
        .bearer_auth(&fan)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut seen = String::new();
    let admitted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
            let admitted = seen
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .find_map(|data| {
                    let place: Value = serde_json::from_str(data).ok()?;
                    (place["status"] == "admitted").then_some(place)
                });
            if let Some(place) = admitted {
                break place;
            }
        }
    })
    .await
    .expect("admitted within 10 s");
    let admission = admitted["admission"].as_str().unwrap();
    let held = api
        .client
        .post(format!("{}/reserve", api.base))
        .bearer_auth(&fan)
        .header("Admission", admission)
        .json(&json!({"event_id": event_id, "category": "Floor", "qty": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::CREATED);
    assert_eq!(api.floor(&event_id).await, (10, 9, 1, 0));
}

/// Sends `request` until it gets an answer that is not the gateway's or the server's "retry
/// later" (503) nor a lost connection, for at most `within`; counts the retries.
async fn until_answered<F, Fut>(request: F, within: Duration, retries: &AtomicUsize) -> Answer
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Answer, reqwest::Error>>,
{
    let deadline = Instant::now() + within;
    loop {
        match request().await {
            Ok(answer)
                if !matches!(
                    answer.status,
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY
                ) =>
            {
                return answer;
            }
            outcome => {
                let what = match outcome {
                    Ok(answer) => format!("{} {}", answer.status, answer.body),
                    Err(err) => err.to_string(),
                };
                assert!(Instant::now() < deadline, "still no answer: {what}");
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// 2,000 fans press "buy" at once for 500 tickets and every winner pays at once: exactly
/// 500 sold, every other fan told `sold_out`, and PostgreSQL holds exactly 500 sales.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by infra/compose-test.sh against a running compose stack"]
async fn two_thousand_fans_race_for_five_hundred_tickets() {
    let api = Api::from_env();
    let event_id = Arc::new(api.event_with_floor(500, None).await);
    let shed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let fans = (0..2000).map(|fan| {
        let (api, event_id, shed) = (api.clone(), event_id.clone(), shed.clone());
        tokio::spawn(async move {
            let user = format!("fan-{fan}");
            // A shed request (503) changed nothing; the same key makes its retry safe anyway.
            let key = format!("race-{fan}");
            let reserved = api
                .reserve_until_answered(&user, &event_id, &key, Duration::from_secs(60), &shed)
                .await;
            if reserved.status != StatusCode::CREATED {
                return (reserved.status, reserved.body["error"]["code"].clone());
            }
            let id = reserved.body["reservation_id"].as_str().unwrap().to_owned();
            let paid = api.confirm(&user, &id, true).await;
            assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
            (StatusCode::CREATED, Value::Null)
        })
    });
    let mut outcomes: HashMap<(StatusCode, Value), usize> = HashMap::new();
    for outcome in join_all(fans).await {
        *outcomes.entry(outcome.expect("a fan")).or_default() += 1;
    }
    println!(
        "race: {outcomes:?} in {:.1} s, {} retried after a 503",
        started.elapsed().as_secs_f64(),
        shed.load(Ordering::Relaxed)
    );
    assert_eq!(
        outcomes.get(&(StatusCode::CREATED, Value::Null)),
        Some(&500)
    );
    assert_eq!(
        outcomes.get(&(StatusCode::CONFLICT, json!("sold_out"))),
        Some(&1500),
        "{outcomes:?}"
    );
    assert_eq!(api.floor(&event_id).await, (500, 0, 0, 500));
    until_stored(&event_id, &[("confirmed", 500)], Duration::from_secs(90)).await;
}

fn shell(variable: &str) {
    let command = std::env::var(variable).unwrap_or_else(|_| panic!("{variable} is not set"));
    let status = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .status()
        .expect("sh runs");
    assert!(status.success(), "{variable}: `{command}` failed");
}

/// While 3,000 fans reserve (each with its own Idempotency-Key, retrying what got no answer)
/// and pay, the reserve container's process is killed and the container comes back. Every fan
/// ends with exactly one reservation, and PostgreSQL holds exactly those, each in the state
/// its fan was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by infra/compose-test.sh against a running compose stack"]
async fn a_restarted_reserve_container_loses_nothing() {
    const FANS: usize = 3000;
    const WORKERS: usize = 32;
    let api = Api::from_env();
    let event_id = Arc::new(api.event_with_floor(5000, None).await);
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    let workers = (0..WORKERS).map(|_| {
        let (api, event_id) = (api.clone(), event_id.clone());
        let (next, accepted, retries) = (next.clone(), accepted.clone(), retries.clone());
        tokio::spawn(async move {
            let mut told = Vec::new();
            loop {
                let fan = next.fetch_add(1, Ordering::Relaxed);
                if fan >= FANS {
                    return told;
                }
                let user = format!("fan-{fan}");
                let key = format!("restart-{fan}");
                let reserved = api
                    .reserve_until_answered(
                        &user,
                        &event_id,
                        &key,
                        Duration::from_secs(90),
                        &retries,
                    )
                    .await;
                assert_eq!(reserved.status, StatusCode::CREATED, "{}", reserved.body);
                accepted.fetch_add(1, Ordering::Relaxed);
                let id = reserved.body["reservation_id"].as_str().unwrap().to_owned();
                let settle = json!({"reservation_id": id, "payment_ok": true});
                let token = api.user(&user);
                let paid = until_answered(
                    || api.send(Method::POST, "/confirm", Some(&token), Some(&settle), None),
                    Duration::from_secs(90),
                    &retries,
                )
                .await;
                // A hold whose first answer was lost may expire before its retry is answered.
                let state = match paid.status {
                    StatusCode::OK => "confirmed",
                    StatusCode::GONE => "expired",
                    other => panic!("confirm: {other} {}", paid.body),
                };
                told.push((id, state));
            }
        })
    });
    let load = tokio::spawn(join_all(workers));

    // Kill the reserve container's process a quarter of the way in; it comes back.
    while accepted.load(Ordering::Relaxed) < FANS / 4 {
        assert!(!load.is_finished(), "the load ended before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = accepted.load(Ordering::Relaxed);
    tokio::task::spawn_blocking(|| shell("DEPLOYED_KILL_RESERVE"))
        .await
        .unwrap();
    let killed = Instant::now();
    tokio::task::spawn_blocking(|| shell("DEPLOYED_AWAIT_RESERVE"))
        .await
        .unwrap();
    let down_for = killed.elapsed();

    let mut told: BTreeMap<String, &str> = BTreeMap::new();
    for worker in load.await.expect("the load") {
        for (id, state) in worker.expect("a worker") {
            assert!(told.insert(id, state).is_none(), "two fans got one hold");
        }
    }
    let confirmed = told.values().filter(|state| **state == "confirmed").count();
    println!(
        "restart: killed after {killed_at} accepted, running again {:.1} s later; {} fans \
         served in {:.1} s, {} requests retried, {confirmed} confirmed, {} expired",
        down_for.as_secs_f64(),
        told.len(),
        started.elapsed().as_secs_f64(),
        retries.load(Ordering::Relaxed),
        told.len() - confirmed
    );
    assert_eq!(told.len(), FANS, "every fan holds exactly one reservation");
    assert!(
        retries.load(Ordering::Relaxed) > 0,
        "no request failed: the kill did not interrupt the load"
    );
    let sold = u64::try_from(confirmed).unwrap();
    assert_eq!(api.floor(&event_id).await, (5000, 5000 - sold, 0, sold));

    let mut expected = vec![("confirmed", sold)];
    if told.len() > confirmed {
        expected.push(("expired", u64::try_from(told.len() - confirmed).unwrap()));
    }
    until_stored(&event_id, &expected, Duration::from_secs(90)).await;
    let rows = psql(&format!(
        "SELECT id || ',' || status FROM reservations WHERE event_id = '{event_id}'"
    ));
    let stored: BTreeMap<String, String> = rows
        .lines()
        .filter_map(|line| line.split_once(','))
        .map(|(id, state)| (id.to_owned(), state.to_owned()))
        .collect();
    let told: BTreeMap<String, String> = told
        .into_iter()
        .map(|(id, state)| (id, state.to_owned()))
        .collect();
    let missing: BTreeSet<_> = told.keys().filter(|id| !stored.contains_key(*id)).collect();
    assert!(missing.is_empty(), "accepted but not stored: {missing:?}");
    assert_eq!(stored, told, "PostgreSQL holds what each fan was told");
}
