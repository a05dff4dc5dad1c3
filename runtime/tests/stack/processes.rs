use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, body};
use crate::process::Process;
use crate::real::{stack, until_stored};

/// Two `ticketd` processes share one Redis: 2,000 fans, split between them, race for 500
/// tickets. Exactly 500 win, and PostgreSQL ends with exactly 500 holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sell_each_ticket_once() {
    let stack = stack(2, "race").await;
    let processes = [
        Process::start(&stack.settings).await,
        Process::start(&stack.settings).await,
    ];
    let apps = Arc::new(
        processes
            .each_ref()
            .map(|process| TestApp::at(process.addr)),
    );
    let event_id = Arc::new(apps[0].event_with_floor(500, None).await);

    let attempts = (0..2000).map(|fan| {
        let (apps, event_id) = (apps.clone(), event_id.clone());
        tokio::spawn(async move {
            apps[fan % 2]
                .reserve(&format!("fan-{fan}"), &event_id, 1)
                .await
                .status()
        })
    });
    let mut by_status: HashMap<StatusCode, usize> = HashMap::new();
    for status in join_all(attempts).await {
        *by_status.entry(status.unwrap()).or_default() += 1;
    }
    assert_eq!(
        by_status.get(&StatusCode::CREATED),
        Some(&500),
        "{by_status:?}"
    );
    assert_eq!(
        by_status.get(&StatusCode::CONFLICT),
        Some(&1500),
        "{by_status:?}"
    );
    assert_eq!(apps[1].floor(&event_id).await, (500, 0, 500, 0));

    let db = stack.postgres().await;
    let stored = until_stored(&db, &event_id, &[("held", 500)], Duration::from_secs(60)).await;
    assert_eq!(stored.get("held"), Some(&500));
    for process in processes {
        process.stop().await;
    }
    stack.drop_database().await;
}

/// Two processes share one waiting room on Redis: fans join through either, both run the
/// admit timer, an admission from one is good on the other, and together they admit no one
/// twice and never more than the stock allows (two per available ticket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_waiting_room_and_admit_no_one_twice() {
    let stack = stack(11, "room").await;
    let processes = [
        Process::start(&stack.settings).await,
        Process::start(&stack.settings).await,
    ];
    let apps = processes
        .each_ref()
        .map(|process| TestApp::at(process.addr));
    let event_id = apps[0].event_with_floor(10, None).await;
    let settings = json!({"enabled": true, "admit_per_second": 40, "admission_ttl": 60});
    assert_eq!(
        apps[1].room(&event_id, settings).await.status(),
        StatusCode::OK
    );
    let fans: Vec<String> = (0..60).map(|fan| format!("fan-{fan}")).collect();
    let joins = fans
        .iter()
        .enumerate()
        .map(|(at, fan)| apps[at % 2].join(&event_id, fan));
    for joined in join_all(joins).await {
        assert_eq!(joined.status(), StatusCode::CREATED);
    }

    // Ten tickets: twenty admitted at most, whatever the pace (40/s) and the two timers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let admitted = loop {
        let mut admitted = Vec::new();
        for (at, fan) in fans.iter().enumerate() {
            let place = apps[(at + 1) % 2].me(&event_id, fan).await;
            if place["status"] == "admitted" {
                admitted.push((at, place["admission"].as_str().unwrap().to_owned()));
            }
        }
        assert!(admitted.len() <= 20, "{} admitted", admitted.len());
        if admitted.len() == 20 {
            break admitted;
        }
        assert!(Instant::now() < deadline, "{} admitted", admitted.len());
    };
    let counted: u64 = join_all(apps.iter().map(|app| admitted_counter(app, &event_id)))
        .await
        .iter()
        .sum();
    assert_eq!(counted, 20, "admissions counted by the two timers");

    // Each admitted fan reserves through the process they did not join: ten get a ticket.
    let reserves = admitted.iter().map(|(at, admission)| {
        apps[(at + 1) % 2].reserve_admitted(&fans[*at], &event_id, Some(admission))
    });
    let mut held = Vec::new();
    for ((at, _), response) in admitted.iter().zip(join_all(reserves).await) {
        match response.status() {
            StatusCode::CREATED => held.push((*at, body(response).await)),
            status => assert_eq!(status, StatusCode::CONFLICT),
        }
    }
    assert_eq!(held.len(), 10);
    let waiting = (0..60)
        .find(|at| admitted.iter().all(|(done, _)| done != at))
        .unwrap();
    let refused = apps[0].reserve(&fans[waiting], &event_id, 1).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Paid for, the event is sold out: every waiting fan hears it, on both processes.
    for (at, hold) in &held {
        let id = hold["reservation_id"].as_str().unwrap();
        let paid = apps[at % 2].confirm(&fans[*at], id, true).await;
        assert_eq!(paid.status(), StatusCode::OK);
    }
    let sold_out = Instant::now();
    for app in &apps {
        while app.me(&event_id, &fans[waiting]).await["status"] != "sold_out" {
            assert!(sold_out.elapsed() < Duration::from_secs(1));
        }
    }
    for process in processes {
        process.stop().await;
    }
    stack.drop_database().await;
}

/// `waiting_room_admitted_total` of one process, for one event.
async fn admitted_counter(app: &TestApp, event_id: &str) -> u64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let series = format!("waiting_room_admitted_total{{event=\"{event_id}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |count| count.trim().parse().unwrap())
}
