use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use domain::contracts::{Catalogue, InsertCategoryError};
use domain::error::StoreError;
use domain::{Category, Event, EventId};

#[derive(Default)]
pub struct MemoryCatalogue {
    events: Mutex<HashMap<EventId, (Event, Vec<Category>)>>,
}

impl MemoryCatalogue {
    /// How many events there are: for tests that check a refused request created none.
    pub fn event_count(&self) -> usize {
        lock(&self.events).len()
    }
}

#[async_trait]
impl Catalogue for MemoryCatalogue {
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError> {
        lock(&self.events).insert(event.id, (event.clone(), Vec::new()));
        Ok(())
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        Ok(lock(&self.events).get(&id).map(|(event, _)| event.clone()))
    }

    async fn insert_category(&self, category: &Category) -> Result<(), InsertCategoryError> {
        let mut events = lock(&self.events);
        let (_, categories) = events
            .get_mut(&category.event_id)
            .ok_or(InsertCategoryError::UnknownEvent)?;
        if categories.iter().any(|known| known.name == category.name) {
            return Err(InsertCategoryError::DuplicateName);
        }
        categories.push(category.clone());
        Ok(())
    }

    async fn categories(&self, event: EventId) -> Result<Vec<Category>, StoreError> {
        Ok(lock(&self.events)
            .get(&event)
            .map(|(_, categories)| categories.clone())
            .unwrap_or_default())
    }
}
