use create_event::{CreateEvent, create_event};
use testkit::TestStack;

fn parse(body: &str) -> Result<CreateEvent, serde_json::Error> {
    serde_json::from_str(body)
}

#[tokio::test]
async fn creates_an_event_the_catalogue_returns() {
    let stack = TestStack::new(600);
    let ctx = &stack.embedded.context;
    let input =
        parse(r#"{"name":"Night Show","date":"2026-06-01T20:00:00+02:00","venue":"Arena"}"#)
            .unwrap();

    let event = create_event(ctx, input).await.unwrap();

    assert_eq!(event.name.as_str(), "Night Show");
    assert_eq!(event.date.to_rfc3339(), "2026-06-01T18:00:00+00:00");
    assert_eq!(ctx.catalogue.event(event.id).await.unwrap(), Some(event));
}

#[test]
fn refuses_bad_input() {
    for body in [
        r#"{"name":"","date":"2026-06-01T20:00:00Z"}"#,
        r#"{"name":"x","date":"2026-06-01"}"#,
        r#"{"name":"x","date":"tomorrow"}"#,
        r#"{"name":"x"}"#,
        r#"{"name":"x","date":"2026-06-01T20:00:00Z","capacity":3}"#,
    ] {
        assert!(parse(body).is_err(), "accepted {body}");
    }
}
