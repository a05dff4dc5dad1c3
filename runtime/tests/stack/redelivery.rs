use std::sync::Arc;
use std::time::Duration;

use adapter_kafka::{KafkaEventSource, KafkaPublisher, KafkaSettings, OutboxRecord, ensure_topic};
use adapter_memory::Embedded;
use adapter_postgres::Postgres;
use chrono::{SubsecRound, Utc};
use domain::Context;
use domain::clock::SystemClock;
use domain::contracts::{EventSource, ReservationStore};
use domain::{
    CategoryName, EventId, Qty, Reservation, ReservationEvent, ReservationId, ReservationStatus,
    UserId,
};

use crate::real::stack;

fn record(reservation: &Reservation) -> OutboxRecord {
    OutboxRecord {
        key: reservation.id.to_string(),
        payload: serde_json::to_string(&ReservationEvent::of(reservation)).unwrap(),
    }
}

/// Reads from `source` until `count` events came, within 20 s.
async fn receive(source: &mut KafkaEventSource, count: usize) -> Vec<ReservationEvent> {
    let mut events = Vec::new();
    while events.len() < count {
        let batch = tokio::time::timeout(Duration::from_secs(20), source.next_batch(100))
            .await
            .expect("events within 20 s")
            .unwrap()
            .expect("an open stream");
        events.extend(batch);
    }
    events
}

/// persist-reservations stops after writing a batch and before committing it: the next
/// consumer of the group gets the batch again, and rewriting it changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_twice_is_stored_once() {
    let stack = stack(5, "redelivery").await;
    let real = &stack.settings.stack;
    let kafka = KafkaSettings {
        brokers: real.kafka_brokers.clone().unwrap(),
        topic: real.kafka_topic.clone(),
        group: real.kafka_group.clone(),
    };
    ensure_topic(&kafka, 1).await.unwrap();
    let postgres = Arc::new(Postgres::connect(stack.database_url(), 2).await.unwrap());
    postgres.migrate().await.unwrap();
    let ctx = Context {
        reservations: postgres.clone(),
        ..Embedded::new(Arc::new(SystemClock), chrono::Duration::minutes(10)).context
    };

    let now = Utc::now().trunc_subsecs(6);
    let held = Reservation {
        id: ReservationId::generate(),
        event_id: EventId::generate(),
        category: CategoryName::parse("Floor").unwrap(),
        user_id: UserId::parse("ann").unwrap(),
        qty: Qty::new(2).unwrap(),
        status: ReservationStatus::Held,
        created_at: now,
        expires_at: now + chrono::Duration::minutes(10),
        updated_at: now,
    };
    let confirmed = Reservation {
        status: ReservationStatus::Confirmed,
        ..held.clone()
    };
    let publisher = KafkaPublisher::new(&kafka).unwrap();
    publisher
        .publish(&[record(&held), record(&confirmed)])
        .await
        .unwrap();

    let mut crashing = KafkaEventSource::new(&kafka).unwrap();
    let batch = receive(&mut crashing, 2).await;
    persist_reservations::persist_reservations(&ctx, &batch)
        .await
        .unwrap();
    drop(crashing); // Gone before its commit.

    let mut next = KafkaEventSource::new(&kafka).unwrap();
    let redelivered = receive(&mut next, 2).await;
    assert_eq!(redelivered, batch);
    persist_reservations::persist_reservations(&ctx, &redelivered)
        .await
        .unwrap();
    next.commit().await.unwrap();
    // A stale `held` arriving late does not move the reservation back.
    publisher.publish(&[record(&held)]).await.unwrap();
    let stale = receive(&mut next, 1).await;
    persist_reservations::persist_reservations(&ctx, &stale)
        .await
        .unwrap();
    next.commit().await.unwrap();

    assert_eq!(postgres.get(held.id).await.unwrap(), Some(confirmed));
    let db = stack.postgres().await;
    let rows: i64 = db
        .query_one("SELECT count(*) FROM reservations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    stack.drop_database().await;
}
