//! The pool gauge, in a test binary of its own: the gauge is process-wide, so no other
//! pool may set it meanwhile.

use adapter_postgres::Postgres;

#[tokio::test]
async fn the_pool_publishes_its_open_connections() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/ticketd_test".to_owned());
    let store = Postgres::connect(&url, 4).await.expect("connect");
    let open = store.open_connections();
    assert!((1..=4).contains(&open), "{open}");
    assert_eq!(telemetry::DB_OPEN_CONNECTIONS.get(), i64::from(open));
}
