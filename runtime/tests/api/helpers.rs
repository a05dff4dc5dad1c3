use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use auth::Jwt;
use domain::Role;
use domain::contracts::StockStore;
use domain::{CategoryName, EventId, StockCounts, UserId};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use ticketd::config::Environment;
use ticketd::{Running, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: Client,
    jwt: Jwt,
    /// The in-process server; `None` for a `ticketd` process started by the test.
    running: Option<Running>,
}

pub fn settings() -> Settings {
    Settings {
        listen_addr: "127.0.0.1:0".parse().expect("loopback address"),
        jwt_secret: Some(SECRET.into()),
        environment: Environment::Development,
        reservation_ttl: 600,
        functions: None,
        max_in_flight: 4096,
        max_connections: 10_000,
        header_timeout: Duration::from_secs(10),
        // Off: the suites make many reservations as one user; rate_limit.rs turns it on.
        reserve_rate_per_minute: 0,
        reserve_burst: 10,
        request_timeout: Duration::from_secs(10),
        body_limit: 16 * 1024,
        finished_hold_retention: Duration::from_secs(15 * 60),
        shutdown_drain_timeout: Duration::from_secs(10),
        shutdown_flush_timeout: Duration::from_secs(15),
        cors_allowed_origins: Vec::new(),
        stack: Default::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(settings()).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let running = ticketd::spawn(settings).await.expect("ticketd starts");
    let mut app = TestApp::at(running.addr);
    app.running = Some(running);
    app
}

pub async fn body(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// Asserts the status and the `{"error":{"code","message"}}` shape; returns the code.
pub async fn error_code(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/json");
    let body = body(response).await;
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"]
        .as_str()
        .expect("an error code")
        .to_owned()
}

impl TestApp {
    /// A client of the `ticketd` listening on `addr`, signing tokens with [`SECRET`].
    pub fn at(addr: SocketAddr) -> Self {
        TestApp {
            addr,
            base: format!("http://{addr}"),
            client: Client::new(),
            jwt: Jwt::new(SECRET.as_bytes()),
            running: None,
        }
    }

    /// The embedded stores behind an in-process app.
    pub fn memory(&self) -> ticketd::MemoryStores {
        let running = self.running.as_ref().expect("an in-process app");
        running.memory.clone().expect("embedded adapters")
    }

    /// Stops an in-process app as SIGTERM would, waiting until everything is flushed.
    pub async fn stop(self) {
        if let Some(running) = self.running {
            running.stop().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn token(&self, role: Role, sub: &str) -> String {
        let sub = UserId::parse(sub).unwrap();
        self.jwt
            .issue(role, &sub, Duration::from_secs(3600))
            .unwrap()
    }

    pub fn admin(&self) -> String {
        self.token(Role::Admin, "ops")
    }

    pub fn user(&self, name: &str) -> String {
        self.token(Role::User, name)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn create_event(&self) -> String {
        let event = json!({"name": "Night Show", "date": "2030-06-01T20:00:00Z"});
        let response = self.post("/events", Some(&self.admin()), &event).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        body(response).await["id"].as_str().unwrap().to_owned()
    }

    pub async fn add_category(
        &self,
        event_id: &str,
        name: &str,
        total: u32,
        max_per_user: Option<u32>,
    ) {
        let mut category = json!({"name": name, "total_stock": total, "price": 49.99});
        if let Some(max) = max_per_user {
            category["max_per_user"] = json!(max);
        }
        let path = format!("/events/{event_id}/ticket-category");
        let response = self.post(&path, Some(&self.admin()), &category).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    /// An event with one category "Floor" of `total` tickets; returns the event id.
    pub async fn event_with_floor(&self, total: u32, max_per_user: Option<u32>) -> String {
        let event_id = self.create_event().await;
        self.add_category(&event_id, "Floor", total, max_per_user)
            .await;
        event_id
    }

    pub async fn reserve(&self, user: &str, event_id: &str, qty: i64) -> Response {
        let request = json!({"event_id": event_id, "category": "Floor", "qty": qty});
        self.post("/reserve", Some(&self.user(user)), &request)
            .await
    }

    pub async fn reserve_with_key(
        &self,
        user: &str,
        event_id: &str,
        qty: i64,
        key: &str,
    ) -> Response {
        let request = json!({"event_id": event_id, "category": "Floor", "qty": qty});
        self.client
            .post(self.url("/reserve"))
            .bearer_auth(self.user(user))
            .header("Idempotency-Key", key)
            .json(&request)
            .send()
            .await
            .expect("request sent")
    }

    /// Sets the event's waiting room (as the admin).
    pub async fn room(&self, event_id: &str, settings: Value) -> Response {
        self.client
            .put(self.url(&format!("/events/{event_id}/waiting-room")))
            .bearer_auth(self.admin())
            .json(&settings)
            .send()
            .await
            .expect("request sent")
    }

    /// The fan joins the event's waiting room.
    pub async fn join(&self, event_id: &str, user: &str) -> Response {
        let path = format!("/events/{event_id}/queue");
        self.post(&path, Some(&self.user(user)), &json!(null)).await
    }

    /// The fan's place in the event's waiting room.
    pub async fn me(&self, event_id: &str, user: &str) -> Value {
        let path = format!("/events/{event_id}/queue/me");
        let response = self.get(&path, Some(&self.user(user))).await;
        assert_eq!(response.status(), StatusCode::OK);
        body(response).await
    }

    /// Reserves one Floor ticket, showing `admission` if given.
    pub async fn reserve_admitted(
        &self,
        user: &str,
        event_id: &str,
        admission: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url("/reserve"))
            .bearer_auth(self.user(user))
            .json(&json!({"event_id": event_id, "category": "Floor", "qty": 1}));
        if let Some(admission) = admission {
            request = request.header("Admission", admission);
        }
        request.send().await.expect("request sent")
    }

    /// Reserves and returns the new reservation's id.
    pub async fn hold(&self, user: &str, event_id: &str, qty: i64) -> String {
        let response = self.reserve(user, event_id, qty).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        body(response).await["reservation_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn confirm(&self, user: &str, reservation_id: &str, payment_ok: bool) -> Response {
        let request = json!({"reservation_id": reservation_id, "payment_ok": payment_ok});
        self.post("/confirm", Some(&self.user(user)), &request)
            .await
    }

    /// The "Floor" counters as (total, available, held, sold), checking the invariant.
    pub async fn floor(&self, event_id: &str) -> (u64, u64, u64, u64) {
        let response = self
            .get(&format!("/events/{event_id}/availability"), None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let availability = body(response).await;
        let floor = &availability["categories"][0];
        let count = |field: &str| floor[field].as_u64().unwrap();
        let counts = (
            count("total"),
            count("available"),
            count("held"),
            count("sold"),
        );
        assert_eq!(
            counts.1 + counts.2 + counts.3,
            counts.0,
            "invariant broken: {floor}"
        );
        counts
    }
}

/// What a request could change in the embedded stores: how many events, and every
/// category's counters.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    events: usize,
    stock: BTreeMap<(EventId, CategoryName), StockCounts>,
}

impl Snapshot {
    pub async fn of(app: &TestApp) -> Self {
        let memory = app.memory();
        let sale = memory.stock.sale_changes(0).await.expect("memory stock");
        Snapshot {
            events: memory.catalogue.event_count(),
            stock: sale
                .categories
                .into_iter()
                .filter_map(|category| Some(((category.event_id, category.name), category.counts?)))
                .collect(),
        }
    }

    /// Events added or removed, and categories added, removed or with other counters.
    fn changes_since(&self, before: &Snapshot) -> usize {
        let categories = self
            .stock
            .keys()
            .chain(before.stock.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|key| self.stock.get(key) != before.stock.get(key))
            .count();
        self.events.abs_diff(before.events) + categories
    }
}

/// One family of attacks on a running app. Each attempt is checked against its documented
/// refusal; `report` prints the family's line of the suite's report and then fails on any
/// attempt answered otherwise, any 5xx, or any change to the stores.
pub struct Attacks<'a> {
    app: &'a TestApp,
    family: &'static str,
    before: Snapshot,
    tried: usize,
    server_errors: usize,
    undocumented: Vec<String>,
}

impl<'a> Attacks<'a> {
    pub async fn on(app: &'a TestApp, family: &'static str) -> Self {
        Attacks {
            app,
            family,
            before: Snapshot::of(app).await,
            tried: 0,
            server_errors: 0,
            undocumented: Vec::new(),
        }
    }

    /// Checks one answer: the documented status, and a JSON error with the documented code.
    pub async fn refused(
        &mut self,
        case: &str,
        response: Response,
        status: StatusCode,
        code: &str,
    ) {
        self.check_answer(case, response, status, code, false).await;
    }

    /// As `refused`, for an answer that must also say when to try again (`Retry-After`).
    pub async fn refused_for_now(
        &mut self,
        case: &str,
        response: Response,
        status: StatusCode,
        code: &str,
    ) {
        self.check_answer(case, response, status, code, true).await;
    }

    async fn check_answer(
        &mut self,
        case: &str,
        response: Response,
        status: StatusCode,
        code: &str,
        retry_after: bool,
    ) {
        let answered = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let is_json = header("content-type") == Some("application/json");
        let says_when = header("retry-after").is_some_and(|secs| secs.parse::<u32>().is_ok());
        let body: Value = response.json().await.unwrap_or_default();
        let answered_code = body["error"]["code"].as_str().unwrap_or_default();
        self.record(
            case,
            // A documented 503 (load shed) is a refusal, not a failure of the server.
            answered.is_server_error() && answered != status,
            answered == status && is_json && answered_code == code && (says_when || !retry_after),
            || format!("{answered} {answered_code:?}, documented {status} {code:?}"),
        );
    }

    /// Checks one attempt that has no JSON error to read, such as a connection that must be
    /// closed, or a replay that must change nothing.
    pub fn checked(&mut self, case: &str, as_documented: bool) {
        self.record(case, false, as_documented, || {
            "not as documented".to_owned()
        });
    }

    fn record(
        &mut self,
        case: &str,
        server_error: bool,
        as_documented: bool,
        answered: impl FnOnce() -> String,
    ) {
        self.tried += 1;
        self.server_errors += usize::from(server_error);
        if !as_documented {
            self.undocumented.push(format!("{case}: {}", answered()));
        }
    }

    pub async fn report(self) {
        use std::io::Write;
        let changes = Snapshot::of(self.app).await.changes_since(&self.before);
        let line = format!(
            "attack family {}: tried {}, refused as documented {}, 5xx {}, state changes {}\n",
            self.family,
            self.tried,
            self.tried - self.undocumented.len(),
            self.server_errors,
            changes
        );
        // Straight to the process's stderr, past the test harness's capture: the line belongs
        // in the output of every run, passing or not.
        let _ = std::io::stderr().write_all(line.as_bytes());
        assert!(self.undocumented.is_empty(), "{:#?}", self.undocumented);
        assert_eq!((self.server_errors, changes), (0, 0), "{line}");
    }
}

/// Sends the headers of a reservation whose body never comes, and returns once the request
/// is in flight: the function has started reading the body, which it shows by answering
/// `Expect: 100-continue` (read here, so the next read is the final answer).
pub async fn stalled_reservation(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /reserve HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\
         expect: 100-continue\r\n\r\n",
        app.user("slow")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut read = vec![0; interim.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut read))
        .await
        .expect("in flight within 5 s")
        .unwrap();
    assert_eq!(read, interim, "{}", String::from_utf8_lossy(&read));
    stream
}
