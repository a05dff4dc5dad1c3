use std::sync::Arc;

use add_ticket_category::{AddTicketCategory, add_ticket_category};
use domain::contracts::InsertCategoryError;
use domain::{EventId, StockCounts};
use testkit::{TestStack, WatchedStock};

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
    let counts = ctx
        .stock
        .counts(event_id, std::slice::from_ref(&category.name))
        .await
        .unwrap();
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
        ctx.stock.counts(event_id, &[floor().name]).await.unwrap()[0].1,
        StockCounts::new(10)
    );
}

#[tokio::test]
async fn a_retry_after_the_stock_store_failed_finishes_the_job() {
    let stack = TestStack::new(600);
    let (event_id, _) = stack.category(10, None).await;
    let mut ctx = stack.embedded.context.clone();
    // Down for the first add_category, as Redis failing between the catalogue's write and its own.
    ctx.stock = Arc::new(WatchedStock::down_for_the_first_add(ctx.stock.clone()));
    let balcony = || parse(r#"{"name":"Balcony","total_stock":40,"price":20}"#);

    let failed = add_ticket_category(&ctx, event_id, balcony()).await;
    assert!(matches!(failed, Err(InsertCategoryError::Store(_))));
    // The catalogue has it, the stock store does not: the retry completes it.
    let retried = add_ticket_category(&ctx, event_id, balcony())
        .await
        .unwrap();
    assert_eq!(retried.name.as_str(), "Balcony");
    let counts = ctx.stock.counts(event_id, &[retried.name]).await.unwrap();
    assert_eq!(counts[0].1, StockCounts::new(40));

    // Another definition under the same name is still a conflict, and changes nothing.
    let other = parse(r#"{"name":"Balcony","total_stock":41,"price":20}"#);
    let refused = add_ticket_category(&ctx, event_id, other).await;
    assert!(matches!(refused, Err(InsertCategoryError::DuplicateName)));
    let counts = ctx.stock.counts(event_id, &[balcony().name]).await.unwrap();
    assert_eq!(counts[0].1, StockCounts::new(40));
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
