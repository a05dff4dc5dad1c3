use std::collections::HashMap;
use std::sync::Arc;

use domain::ReservationStatus;
use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::helpers::{body, spawn_app};

/// 2,000 fans press "buy" at once for 500 tickets: exactly 500 holds, 1,500 `sold_out`,
/// and after payments and cancellations the stored states match the counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_fans_for_five_hundred_tickets() {
    let app = Arc::new(spawn_app().await);
    let event_id = Arc::new(app.event_with_floor(500, None).await);

    let attempts = (0..2000).map(|fan| {
        let (app, event_id) = (app.clone(), event_id.clone());
        tokio::spawn(async move {
            let response = app.reserve(&format!("fan-{fan}"), &event_id, 1).await;
            let status = response.status();
            (fan, status, body(response).await)
        })
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let mut by_status: HashMap<StatusCode, usize> = HashMap::new();
    for (_, status, answer) in &results {
        *by_status.entry(*status).or_default() += 1;
        if *status == StatusCode::CONFLICT {
            assert_eq!(answer["error"]["code"], "sold_out");
        }
    }
    assert_eq!(by_status[&StatusCode::CREATED], 500, "{by_status:?}");
    assert_eq!(by_status[&StatusCode::CONFLICT], 1500, "{by_status:?}");
    assert_eq!(app.floor(&event_id).await, (500, 0, 500, 0));

    // Every other winner pays, and the rest cancel, all at once.
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, status, _)| *status == StatusCode::CREATED)
        .map(|(fan, _, answer)| (*fan, answer["reservation_id"].as_str().unwrap().to_owned()))
        .collect();
    let settles = winners.iter().map(|(fan, id)| {
        let (app, id, fan) = (app.clone(), id.clone(), *fan);
        tokio::spawn(async move {
            app.confirm(&format!("fan-{fan}"), &id, fan % 2 == 0)
                .await
                .status()
        })
    });
    for status in join_all(settles).await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let paid = winners.iter().filter(|(fan, _)| fan % 2 == 0).count() as u64;
    assert_eq!(app.floor(&event_id).await, (500, 500 - paid, 0, paid));

    let app = Arc::into_inner(app).expect("no request left in flight");
    let reservations = app.memory().reservations.clone();
    app.stop().await;
    let stored = reservations.all();
    assert_eq!(stored.len(), 500);
    let confirmed = stored
        .iter()
        .filter(|r| r.status == ReservationStatus::Confirmed)
        .count();
    let cancelled = stored
        .iter()
        .filter(|r| r.status == ReservationStatus::Cancelled)
        .count();
    assert_eq!((confirmed as u64, cancelled as u64), (paid, 500 - paid));
}
