//! `POST /events/{id}/ticket-category` (admin): adds a category to the catalogue and starts
//! its stock, all of it available.

use domain::Context;
use domain::contracts::InsertCategoryError;
use domain::{Category, CategoryName, EventId, PerUserLimit, Price, TotalStock};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddTicketCategory {
    pub name: CategoryName,
    pub total_stock: TotalStock,
    pub price: Price,
    #[serde(default)]
    pub max_per_user: Option<PerUserLimit>,
}

pub async fn add_ticket_category(
    ctx: &Context,
    event_id: EventId,
    input: AddTicketCategory,
) -> Result<Category, InsertCategoryError> {
    let category = Category {
        event_id,
        name: input.name,
        total_stock: input.total_stock,
        price: input.price,
        max_per_user: input.max_per_user,
    };
    // The catalogue decides what exists (and refuses duplicates) before any stock appears.
    ctx.catalogue.insert_category(&category).await?;
    ctx.stock.add_category(&category).await?;
    Ok(category)
}
