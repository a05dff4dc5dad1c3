use domain::ErrorKind;
use domain::EventId;
use get_availability::get_availability;
use testkit::TestStack;

#[tokio::test]
async fn shows_the_counters_of_every_category() {
    let stack = TestStack::new(600);
    let (event_id, category) = stack.category(10, None).await;
    let ctx = &stack.embedded.context;
    stack.hold(event_id, &category, "fan", 3).await;

    let availability = get_availability(ctx, event_id).await.unwrap();

    assert_eq!(availability.categories.len(), 1);
    let floor = &availability.categories[0];
    assert_eq!(
        (floor.total, floor.available, floor.held, floor.sold),
        (10, 7, 3, 0)
    );
    assert_eq!(floor.name, category);
}

#[tokio::test]
async fn an_unknown_event_is_not_found() {
    let stack = TestStack::new(600);
    let err = get_availability(&stack.embedded.context, EventId::generate())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}
