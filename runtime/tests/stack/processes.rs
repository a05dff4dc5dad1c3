use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::helpers::TestApp;
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
