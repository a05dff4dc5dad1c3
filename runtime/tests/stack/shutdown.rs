//! SIGTERM under load: the process drains, relays and stores before it exits, so nothing a
//! client was told happened is lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use adapter_redis::{RedisStockStore, RedisTarget};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body};
use crate::process::Process;
use crate::real::stack;

/// Clients reserving at once while the process is told to stop.
const CLIENTS: usize = 48;

/// What the clients were told: reservation id -> status answered with a 2xx.
type Answers = BTreeMap<String, String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_answered_request() {
    let stack = stack(6, "sigterm").await;
    let mut process = Process::start(&stack.settings).await;
    let app = Arc::new(TestApp::at(process.addr));
    let event_id = Arc::new(app.event_with_floor(1_000_000, None).await);

    let answered = Arc::new(AtomicUsize::new(0));
    let exited = Arc::new(AtomicBool::new(false));
    let clients = (0..CLIENTS).map(|client| {
        let (app, event_id) = (app.clone(), event_id.clone());
        let (answered, exited) = (answered.clone(), exited.clone());
        tokio::spawn(async move {
            let mut answers = Answers::new();
            let mut round = 0;
            while !exited.load(Ordering::Relaxed) {
                round += 1;
                // A user per request: the per-user rate limit stays out of the way.
                let user = format!("fan-{client}-{round}");
                let reserve = json!({"event_id": *event_id, "category": "Floor", "qty": 1});
                let Ok(response) = try_post(&app, "/reserve", &user, &reserve).await else {
                    continue;
                };
                if response.status() != StatusCode::CREATED {
                    continue;
                }
                let Ok(hold) = response.json::<Value>().await else {
                    continue;
                };
                let id = hold["reservation_id"].as_str().unwrap().to_owned();
                answers.insert(id.clone(), "held".into());
                answered.fetch_add(1, Ordering::Relaxed);
                // Every other hold is paid for: a second change of state to keep.
                if round % 2 == 0
                    && let Ok(paid) = try_post(
                        &app,
                        "/confirm",
                        &user,
                        &json!({"reservation_id": id, "payment_ok": true}),
                    )
                    .await
                    && paid.status() == StatusCode::OK
                {
                    let paid = body(paid).await;
                    answers.insert(id, paid["status"].as_str().unwrap().to_owned());
                }
            }
            answers
        })
    });
    let clients: Vec<_> = clients.collect();
    // Load first: stop only once plenty has been answered.
    for _ in 0..300 {
        if answered.load(Ordering::Relaxed) >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered.load(Ordering::Relaxed) >= 300, "too little load");

    process.terminate();
    process.exited().await;
    exited.store(true, Ordering::Relaxed);
    let mut told = Answers::new();
    for answers in join_all(clients).await {
        told.extend(answers.unwrap());
    }

    // Relayed before exit: nothing waits in the Redis outbox.
    let redis = RedisStockStore::connect(&RedisTarget::Server(stack.redis_url().into()))
        .await
        .unwrap();
    assert_eq!(
        redis.outbox_backlog().await.unwrap(),
        0,
        "outbox not flushed"
    );

    // Stored before exit: every answer is in PostgreSQL, in that state or a later one.
    let db = stack.postgres().await;
    let rows = db
        .query("SELECT id::text, status FROM reservations", &[])
        .await
        .unwrap();
    let stored: BTreeMap<String, String> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let mut lost = Vec::new();
    for (id, status) in &told {
        let kept = match (status.as_str(), stored.get(id).map(String::as_str)) {
            (_, None) => false,
            ("held", Some(_)) => true,
            (answered, Some(stored)) => answered == stored,
        };
        if !kept {
            lost.push((id, status, stored.get(id)));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} answers not in PostgreSQL, e.g. {:?}",
        lost.len(),
        told.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "SIGTERM under load: {} answered reservations, all stored",
        told.len()
    );
    stack.drop_database().await;
}

/// A request that may fail to connect: the process is going away under the clients.
async fn try_post(
    app: &TestApp,
    path: &str,
    user: &str,
    request: &Value,
) -> reqwest::Result<reqwest::Response> {
    app.client
        .post(app.url(path))
        .bearer_auth(app.user(user))
        .json(request)
        .send()
        .await
}
