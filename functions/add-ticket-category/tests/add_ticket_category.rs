use add_ticket_category::{AddTicketCategory, add_ticket_category};
use domain::contracts::InsertCategoryError;
use domain::{EventId, StockCounts};
use testkit::TestStack;

fn parse(body: &str) -> AddTicketCategory {
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn starts_the_stock_all_available() {
    let stack = TestStack::new(600);
    let (event_id, _) = stack.category(10, None).await;
    let ctx = &stack.embedded.context;

    let input = parse(r#"{"name":"Balcony","total_stock":120,"price":35.5,"max_per_user":4}"#);
    let category = add_ticket_category(ctx, event_id, input).await.unwrap();

    assert_eq!(category.price.cents(), 3550);
    let counts = ctx.stock.counts(event_id).await.unwrap();
    let balcony = counts
        .iter()
        .find(|(name, _)| name.as_str() == "Balcony")
        .unwrap();
    assert_eq!(balcony.1, StockCounts::new(120));
}

#[tokio::test]
async fn refuses_a_duplicate_name_and_an_unknown_event() {
    let stack = TestStack::new(600);
    let (event_id, _) = stack.category(10, None).await;
    let ctx = &stack.embedded.context;
    let floor = || parse(r#"{"name":"Floor","total_stock":5,"price":10}"#);

    let duplicate = add_ticket_category(ctx, event_id, floor()).await;
    assert!(matches!(duplicate, Err(InsertCategoryError::DuplicateName)));
    let unknown = add_ticket_category(ctx, EventId::generate(), floor()).await;
    assert!(matches!(unknown, Err(InsertCategoryError::UnknownEvent)));
    // The refused duplicate left the first category's stock as it was.
    assert_eq!(
        ctx.stock.counts(event_id).await.unwrap()[0].1,
        StockCounts::new(10)
    );
}

#[test]
fn refuses_bad_fields() {
    for body in [
        r#"{"name":"A","total_stock":-1,"price":10}"#,
        r#"{"name":"A","total_stock":5,"price":-10}"#,
        r#"{"name":"A","total_stock":5,"price":1.005}"#,
        r#"{"name":" ","total_stock":5,"price":10}"#,
        r#"{"name":"A","total_stock":5,"price":10,"max_per_user":0}"#,
        r#"{"name":"A","total_stock":"5","price":10}"#,
    ] {
        assert!(
            serde_json::from_str::<AddTicketCategory>(body).is_err(),
            "accepted {body}"
        );
    }
}
