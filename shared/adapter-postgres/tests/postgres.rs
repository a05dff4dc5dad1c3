//! The PostgreSQL adapter against a real server (`DATABASE_URL`, default the local
//! `ticketd_test` that `infra/local-stack.sh` creates, apart from a developer's `ticketd`).
//!
//! The database is shared with other test binaries running at the same time: every test works
//! on fresh ids and never truncates anything.

use adapter_postgres::Postgres;
use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use domain::contracts::{Catalogue, InsertCategoryError, ReservationStore};
use domain::{
    Category, CategoryName, Event, EventId, EventName, PerUserLimit, Price, Qty, Reservation,
    ReservationEvent, ReservationId, ReservationStatus, TotalStock, UserId, Venue,
};
use tokio_postgres::NoTls;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/ticketd_test";

fn url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

async fn store() -> Postgres {
    let store = Postgres::connect(&url(), 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// What PostgreSQL keeps of a time: microseconds.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn event() -> Event {
    Event {
        id: EventId::generate(),
        name: EventName::parse("Night at the Opera").unwrap(),
        date: now() + Duration::days(30),
        venue: Some(Venue::parse("Wembley").unwrap()),
    }
}

fn category(event_id: EventId, name: &str, stock: i64) -> Category {
    Category {
        event_id,
        name: CategoryName::parse(name).unwrap(),
        total_stock: TotalStock::new(stock).unwrap(),
        price: Price::from_cents(4999).unwrap(),
        max_per_user: None,
    }
}

fn held(event_id: EventId, category: &str, user: &str) -> Reservation {
    let at = now();
    Reservation {
        id: ReservationId::generate(),
        event_id,
        category: CategoryName::parse(category).unwrap(),
        user_id: UserId::parse(user).unwrap(),
        qty: Qty::new(2).unwrap(),
        status: ReservationStatus::Held,
        created_at: at,
        expires_at: at + Duration::minutes(10),
        updated_at: at,
    }
}

fn moved(reservation: &Reservation, status: ReservationStatus) -> Reservation {
    Reservation {
        status,
        updated_at: reservation.updated_at + Duration::seconds(5),
        ..reservation.clone()
    }
}

fn events(reservations: &[&Reservation]) -> Vec<ReservationEvent> {
    reservations
        .iter()
        .map(|r| ReservationEvent::of(r))
        .collect()
}

#[tokio::test]
async fn migrate_twice_and_concurrently_is_fine() {
    let a = store().await;
    let b = Postgres::connect(&url(), 2).await.expect("connect");
    a.migrate().await.expect("again");
    let (first, second) = tokio::join!(a.migrate(), b.migrate());
    first.expect("concurrent migrate");
    second.expect("concurrent migrate");
}

/// Two processes migrating an empty database at the same moment: the advisory lock makes one
/// wait, and each migration is applied and recorded exactly once.
#[tokio::test]
async fn concurrent_migrations_of_a_fresh_database_apply_once() {
    let admin = raw_client(&url()).await;
    let name = format!("ticketd_scratch_{}", uuid::Uuid::now_v7().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create scratch database");
    let scratch = with_database(&url(), &name);

    let (a, b) = tokio::join!(
        Postgres::connect(&scratch, 1),
        Postgres::connect(&scratch, 1)
    );
    let (a, b) = (a.expect("connect a"), b.expect("connect b"));
    let tasks = [a, b].map(|store| {
        tokio::spawn(async move {
            let outcome = store.migrate().await;
            (store, outcome)
        })
    });
    let mut stores = Vec::new();
    for task in tasks {
        let (store, outcome) = task.await.expect("task");
        outcome.expect("concurrent migrate of a fresh database");
        stores.push(store);
    }
    let check = raw_client(&scratch).await;
    let rows = check
        .query(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version",
            &[],
        )
        .await
        .expect("schema_migrations");
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(
            row.get::<_, i64>(1),
            1,
            "{} applied once",
            row.get::<_, &str>(0)
        );
    }
    // The new schema works.
    let e = event();
    stores[0]
        .insert_event(&e)
        .await
        .expect("insert into scratch");

    drop((stores, check));
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop scratch database");
}

#[tokio::test]
async fn events_and_categories_round_trip_in_order() {
    let store = store().await;
    let e = event();
    store.insert_event(&e).await.unwrap();
    assert_eq!(store.event(e.id).await.unwrap(), Some(e.clone()));

    let no_venue = Event {
        venue: None,
        ..event()
    };
    store.insert_event(&no_venue).await.unwrap();
    assert_eq!(store.event(no_venue.id).await.unwrap(), Some(no_venue));
    assert_eq!(store.event(EventId::generate()).await.unwrap(), None);

    // Added out of alphabetical order, to see insertion order come back.
    let mut vip = category(e.id, "VIP", 10);
    vip.max_per_user = Some(PerUserLimit::new(2).unwrap());
    vip.price = Price::from_cents(Price::MAX_CENTS).unwrap();
    let added = [
        category(e.id, "Floor", 500),
        vip,
        category(e.id, "Balcony", 0),
    ];
    for c in &added {
        store.insert_category(c).await.unwrap();
    }
    assert_eq!(store.categories(e.id).await.unwrap(), added);

    let all = store.all_categories().await.unwrap();
    let mine: Vec<_> = all.into_iter().filter(|c| c.event_id == e.id).collect();
    assert_eq!(mine, added);
}

#[tokio::test]
async fn categories_of_an_unknown_event_are_empty() {
    let store = store().await;
    assert!(
        store
            .categories(EventId::generate())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_duplicate_category_name_is_refused() {
    let store = store().await;
    let e = event();
    store.insert_event(&e).await.unwrap();
    store
        .insert_category(&category(e.id, "Floor", 100))
        .await
        .unwrap();
    let again = store.insert_category(&category(e.id, "Floor", 7)).await;
    assert!(matches!(again, Err(InsertCategoryError::DuplicateName)));
    // The first one stands.
    assert_eq!(
        store.categories(e.id).await.unwrap(),
        [category(e.id, "Floor", 100)]
    );

    // The same name in another event is another category.
    let other = event();
    store.insert_event(&other).await.unwrap();
    store
        .insert_category(&category(other.id, "Floor", 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_category_of_an_unknown_event_is_refused() {
    let store = store().await;
    let refused = store
        .insert_category(&category(EventId::generate(), "Floor", 1))
        .await;
    assert!(matches!(refused, Err(InsertCategoryError::UnknownEvent)));
}

#[tokio::test]
async fn apply_is_idempotent_and_get_reads_back() {
    let store = store().await;
    let event_id = EventId::generate();
    let a = held(event_id, "Floor", "alice");
    let b = held(event_id, "Floor", "bob");
    let batch = events(&[&a, &b]);

    store.apply(&batch).await.unwrap();
    store.apply(&batch).await.unwrap();
    assert_eq!(store.get(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(store.get(ReservationId::generate()).await.unwrap(), None);

    store.apply(&[]).await.unwrap();
}

#[tokio::test]
async fn held_then_confirmed_in_one_batch_ends_confirmed() {
    let store = store().await;
    let r = held(EventId::generate(), "Floor", "alice");
    let confirmed = moved(&r, ReservationStatus::Confirmed);
    // Also a stale `held` after it, as a redelivery inside one batch would bring.
    store.apply(&events(&[&r, &confirmed, &r])).await.unwrap();
    assert_eq!(store.get(r.id).await.unwrap(), Some(confirmed));
}

#[tokio::test]
async fn a_final_state_never_regresses_nor_changes() {
    let store = store().await;
    let event_id = EventId::generate();
    let r = held(event_id, "Floor", "alice");
    store.apply(&events(&[&r])).await.unwrap();
    let expired = moved(&r, ReservationStatus::Expired);
    store.apply(&events(&[&expired])).await.unwrap();
    assert_eq!(store.get(r.id).await.unwrap(), Some(expired.clone()));

    // A redelivered `held` does not bring the hold back.
    store.apply(&events(&[&r])).await.unwrap();
    // Nor does another final state replace the first.
    let confirmed = moved(&r, ReservationStatus::Confirmed);
    store.apply(&events(&[&confirmed])).await.unwrap();
    let cancelled = moved(&r, ReservationStatus::Cancelled);
    store.apply(&events(&[&cancelled, &r])).await.unwrap();
    assert_eq!(store.get(r.id).await.unwrap(), Some(expired));

    // A final state first, then `held`, in one batch: the final state stays.
    let s = held(event_id, "Floor", "bob");
    let cancelled = moved(&s, ReservationStatus::Cancelled);
    store.apply(&events(&[&cancelled, &s])).await.unwrap();
    assert_eq!(store.get(s.id).await.unwrap(), Some(cancelled));
}

#[tokio::test]
async fn reservations_of_lists_one_category() {
    let store = store().await;
    let event_id = EventId::generate();
    let floor = [
        held(event_id, "Floor", "alice"),
        held(event_id, "Floor", "bob"),
    ];
    let balcony = held(event_id, "Balcony", "carol");
    let elsewhere = held(EventId::generate(), "Floor", "dave");
    let sold = moved(&floor[1], ReservationStatus::Confirmed);
    store
        .apply(&events(&[
            &floor[0], &floor[1], &balcony, &elsewhere, &sold,
        ]))
        .await
        .unwrap();

    let floor_name = CategoryName::parse("Floor").unwrap();
    let mut got = store.reservations_of(event_id, &floor_name).await.unwrap();
    got.sort_by_key(|r| r.id);
    assert_eq!(got, [floor[0].clone(), sold]);
    let none = store
        .reservations_of(EventId::generate(), &floor_name)
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_thousand_events_in_one_call() {
    let store = store().await;
    let event_id = EventId::generate();
    let holds: Vec<_> = (0..500)
        .map(|i| held(event_id, "Floor", &format!("user-{i}")))
        .collect();
    // 500 holds and, in the same batch, every other one confirmed: 1,000 events.
    let mut batch: Vec<_> = holds.iter().map(ReservationEvent::of).collect();
    batch.extend(
        holds
            .iter()
            .step_by(2)
            .map(|r| ReservationEvent::of(&moved(r, ReservationStatus::Confirmed))),
    );
    batch.extend(holds.iter().skip(1).step_by(2).map(ReservationEvent::of));
    assert_eq!(batch.len(), 1000);
    store.apply(&batch).await.unwrap();

    let floor = CategoryName::parse("Floor").unwrap();
    let stored = store.reservations_of(event_id, &floor).await.unwrap();
    assert_eq!(stored.len(), 500);
    let confirmed = stored
        .iter()
        .filter(|r| r.status == ReservationStatus::Confirmed)
        .count();
    assert_eq!(confirmed, 250);

    // A thousand fresh ones at once, then all of them again, expired.
    let fresh: Vec<_> = (0..1000)
        .map(|i| held(event_id, "Balcony", &format!("user-{i}")))
        .collect();
    store
        .apply(&fresh.iter().map(ReservationEvent::of).collect::<Vec<_>>())
        .await
        .unwrap();
    let expired: Vec<_> = fresh
        .iter()
        .map(|r| ReservationEvent::of(&moved(r, ReservationStatus::Expired)))
        .collect();
    store.apply(&expired).await.unwrap();
    let balcony = CategoryName::parse("Balcony").unwrap();
    let stored = store.reservations_of(event_id, &balcony).await.unwrap();
    assert_eq!(stored.len(), 1000);
    assert!(
        stored
            .iter()
            .all(|r| r.status == ReservationStatus::Expired)
    );
}

#[tokio::test]
async fn a_row_that_does_not_parse_is_an_error_not_a_panic() {
    let store = store().await;
    let r = held(EventId::generate(), "Floor", "alice");
    store.apply(&events(&[&r])).await.unwrap();
    let raw = raw_client(&url()).await;
    raw.execute(
        "UPDATE reservations SET user_id = '' WHERE id = $1",
        &[&r.id.0],
    )
    .await
    .unwrap();

    let err = store.get(r.id).await.expect_err("an empty user id");
    assert!(err.0.contains("reservations"), "{err}");

    // Leave nothing broken behind for whoever reads the shared database next.
    raw.execute("DELETE FROM reservations WHERE id = $1", &[&r.id.0])
        .await
        .unwrap();
}

#[tokio::test]
async fn connection_errors_name_the_target_but_not_the_password() {
    let refused = Postgres::connect("postgres://ticketd:s3cret-pw@127.0.0.1:1/ticketd", 2).await;
    let err = refused.err().expect("nothing listens on port 1").0;
    assert!(err.contains("ticketd@127.0.0.1:1/ticketd"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");

    let invalid = Postgres::connect("postgres://ticketd:s3cret-pw@127.0.0.1:port/x", 2).await;
    let err = invalid.err().expect("a port must be a number").0;
    assert!(err.contains("invalid PostgreSQL URL"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}

async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// `url` with its database replaced by `name` (URL form only, which is what the tests use).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}
