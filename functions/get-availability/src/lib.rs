//! `GET /events/{id}/availability` (public): what is left, held and sold in each category.

use domain::error::StoreError;
use domain::{ApiError, Context};
use domain::{CategoryName, EventId, Price};
use serde::Serialize;

#[derive(Debug, Serialize, PartialEq)]
pub struct Availability {
    pub event_id: EventId,
    pub categories: Vec<CategoryAvailability>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct CategoryAvailability {
    pub name: CategoryName,
    pub price: Price,
    pub total: u32,
    pub available: u32,
    pub held: u32,
    pub sold: u32,
}

pub async fn get_availability(ctx: &Context, event_id: EventId) -> Result<Availability, ApiError> {
    if ctx.catalogue.event(event_id).await?.is_none() {
        return Err(ApiError::not_found("event_not_found", "no such event"));
    }
    let categories = ctx.catalogue.categories(event_id).await?;
    let names: Vec<CategoryName> = categories.iter().map(|c| c.name.clone()).collect();
    let counts = ctx.stock.counts(event_id, &names).await?;
    let categories = categories
        .into_iter()
        .map(|category| {
            // The catalogue says what exists; a category without stock means the stock store
            // lost it (it is rebuilt by reconcile), so say "unavailable" rather than guess.
            let (_, counts) = counts
                .iter()
                .find(|(name, _)| *name == category.name)
                .ok_or_else(|| StoreError(format!("no stock for category {}", category.name)))?;
            Ok(CategoryAvailability {
                name: category.name,
                price: category.price,
                total: counts.total,
                available: counts.available,
                held: counts.held,
                sold: counts.sold,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Availability {
        event_id,
        categories,
    })
}
