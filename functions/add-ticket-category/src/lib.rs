//! `POST /events/{id}/ticket-category` (admin): adds a category to the catalogue and starts
//! its stock, all of it available. Retry-safe: the catalogue and the stock store are two
//! writes, so a retry of the same definition finishes what a failed attempt started.

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
    match ctx.catalogue.insert_category(&category).await {
        Ok(()) => {}
        Err(InsertCategoryError::DuplicateName) if is_stored(ctx, &category).await? => {}
        Err(err) => return Err(err),
    }
    // Starts the stock only where it is missing, so finishing a retry changes no live stock.
    ctx.stock.add_category(&category).await?;
    Ok(category)
}

/// Whether the catalogue already has this very definition: a retry, not another category.
async fn is_stored(ctx: &Context, category: &Category) -> Result<bool, InsertCategoryError> {
    let stored = ctx.catalogue.categories(category.event_id).await?;
    Ok(stored.contains(category))
}
