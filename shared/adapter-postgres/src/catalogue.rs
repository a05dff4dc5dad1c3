//! `Catalogue` on the `events` and `ticket_categories` tables.

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{Postgres, bad_row, column, describe};
use domain::contracts::{Catalogue, InsertCategoryError};
use domain::error::StoreError;
use domain::{
    Category, CategoryName, Event, EventId, EventName, PerUserLimit, Price, TotalStock, Venue,
};

const CATEGORY_COLUMNS: &str = "event_id, name, total_stock, price_cents, max_per_user";

impl Postgres {
    /// Every category of every event, each event's in the order they were added: what
    /// `ticketd reconcile` rebuilds Redis from.
    pub async fn all_categories(&self) -> Result<Vec<Category>, StoreError> {
        let sql =
            format!("SELECT {CATEGORY_COLUMNS} FROM ticket_categories ORDER BY event_id, position");
        let rows = self
            .conn()
            .await?
            .query(&sql, &[])
            .await
            .map_err(|err| describe("read all categories", &err))?;
        rows.iter().map(category).collect()
    }
}

#[async_trait]
impl Catalogue for Postgres {
    /// Inserting an id again replaces the event's fields (like the memory adapter), which makes
    /// a retried create harmless; its categories are kept.
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError> {
        self.conn()
            .await?
            .execute(
                "INSERT INTO events (id, name, date, venue) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE
                 SET name = excluded.name, date = excluded.date, venue = excluded.venue",
                &[
                    &event.id.0,
                    &event.name.as_str(),
                    &event.date,
                    &event.venue.as_ref().map(Venue::as_str),
                ],
            )
            .await
            .map_err(|err| describe("insert event", &err))?;
        Ok(())
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        let row = self
            .conn()
            .await?
            .query_opt(
                "SELECT id, name, date, venue FROM events WHERE id = $1",
                &[&id.0],
            )
            .await
            .map_err(|err| describe("read event", &err))?;
        row.as_ref().map(event).transpose()
    }

    /// The constraints decide, so two concurrent inserts of one name cannot both succeed.
    async fn insert_category(&self, category: &Category) -> Result<(), InsertCategoryError> {
        let total_stock = to_i32(category.total_stock.get(), "total_stock")?;
        let price_cents = i64::try_from(category.price.cents())
            .map_err(|_| StoreError("postgres: price_cents does not fit a bigint".into()))?;
        let max_per_user = category
            .max_per_user
            .map(|limit| to_i32(limit.get(), "max_per_user"))
            .transpose()?;
        let sql = format!(
            "INSERT INTO ticket_categories ({CATEGORY_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
        );
        let result = self
            .conn()
            .await?
            .execute(
                &sql,
                &[
                    &category.event_id.0,
                    &category.name.as_str(),
                    &total_stock,
                    &price_cents,
                    &max_per_user,
                ],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                Err(InsertCategoryError::UnknownEvent)
            }
            Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(InsertCategoryError::DuplicateName)
            }
            Err(err) => Err(describe("insert category", &err).into()),
        }
    }

    async fn categories(&self, event: EventId) -> Result<Vec<Category>, StoreError> {
        let sql = format!(
            "SELECT {CATEGORY_COLUMNS} FROM ticket_categories WHERE event_id = $1 ORDER BY position"
        );
        let rows = self
            .conn()
            .await?
            .query(&sql, &[&event.0])
            .await
            .map_err(|err| describe("read categories", &err))?;
        rows.iter().map(category).collect()
    }
}

fn to_i32(value: u32, column: &str) -> Result<i32, StoreError> {
    i32::try_from(value)
        .map_err(|_| StoreError(format!("postgres: {column} does not fit an integer")))
}

fn event(row: &Row) -> Result<Event, StoreError> {
    const TABLE: &str = "events";
    let bad = |reason: String| bad_row(TABLE, reason);
    let venue: Option<&str> = column(row, TABLE, "venue")?;
    Ok(Event {
        id: EventId(column(row, TABLE, "id")?),
        name: EventName::parse(column(row, TABLE, "name")?).map_err(bad)?,
        date: column(row, TABLE, "date")?,
        venue: venue.map(Venue::parse).transpose().map_err(bad)?,
    })
}

fn category(row: &Row) -> Result<Category, StoreError> {
    const TABLE: &str = "ticket_categories";
    let bad = |reason: String| bad_row(TABLE, reason);
    let total_stock: i32 = column(row, TABLE, "total_stock")?;
    let price_cents: i64 = column(row, TABLE, "price_cents")?;
    let max_per_user: Option<i32> = column(row, TABLE, "max_per_user")?;
    let price_cents = u64::try_from(price_cents).map_err(|_| bad("negative price".into()))?;
    Ok(Category {
        event_id: EventId(column(row, TABLE, "event_id")?),
        name: CategoryName::parse(column(row, TABLE, "name")?).map_err(bad)?,
        total_stock: TotalStock::new(total_stock.into()).map_err(bad)?,
        price: Price::from_cents(price_cents).map_err(bad)?,
        max_per_user: max_per_user
            .map(|limit| PerUserLimit::new(limit.into()))
            .transpose()
            .map_err(bad)?,
    })
}
