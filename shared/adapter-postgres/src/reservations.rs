//! `ReservationStore` on the `reservations` table.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Postgres, bad_row, column, describe};
use domain::contracts::ReservationStore;
use domain::error::StoreError;
use domain::{
    CategoryName, EventId, Qty, Reservation, ReservationEvent, ReservationId, ReservationStatus,
    UserId,
};

const COLUMNS: &str =
    "id, event_id, category, user_id, qty, status, created_at, expires_at, updated_at";

/// The whole batch in one statement. The `WHERE` of the update is the contract's rule: only a
/// move out of `held` changes a stored row, so a redelivered `held` never undoes a final state
/// and a final state is never replaced by another.
const UPSERT: &str = "
    INSERT INTO reservations
        (id, event_id, category, user_id, qty, status, created_at, expires_at, updated_at)
    SELECT * FROM UNNEST(
        $1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::integer[], $6::text[],
        $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
    ON CONFLICT (id) DO UPDATE SET
        event_id = excluded.event_id,
        category = excluded.category,
        user_id = excluded.user_id,
        qty = excluded.qty,
        status = excluded.status,
        created_at = excluded.created_at,
        expires_at = excluded.expires_at,
        updated_at = excluded.updated_at
    WHERE reservations.status = 'held' AND excluded.status <> 'held'";

impl Postgres {
    /// Every stored reservation of one category: what `ticketd reconcile` recounts its
    /// held and sold tickets from.
    pub async fn reservations_of(
        &self,
        event_id: EventId,
        category: &CategoryName,
    ) -> Result<Vec<Reservation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM reservations WHERE event_id = $1 AND category = $2 ORDER BY id"
        );
        let rows = self
            .conn()
            .await?
            .query(&sql, &[&event_id.0, &category.as_str()])
            .await
            .map_err(|err| describe("read reservations of a category", &err))?;
        rows.iter().map(reservation).collect()
    }
}

#[async_trait]
impl ReservationStore for Postgres {
    async fn apply(&self, events: &[ReservationEvent]) -> Result<(), StoreError> {
        let latest = collapse(events);
        if latest.is_empty() {
            return Ok(());
        }
        let mut columns = Columns::with_capacity(latest.len());
        for reservation in latest.values() {
            columns.push(reservation)?;
        }
        self.conn()
            .await?
            .execute(
                UPSERT,
                &[
                    &columns.ids,
                    &columns.event_ids,
                    &columns.categories,
                    &columns.user_ids,
                    &columns.qtys,
                    &columns.statuses,
                    &columns.created,
                    &columns.expires,
                    &columns.updated,
                ],
            )
            .await
            .map_err(|err| describe("write reservations", &err))?;
        Ok(())
    }

    async fn get(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM reservations WHERE id = $1");
        let row = self
            .conn()
            .await?
            .query_opt(&sql, &[&id.0])
            .await
            .map_err(|err| describe("read reservation", &err))?;
        row.as_ref().map(reservation).transpose()
    }

    async fn statuses(
        &self,
        ids: &[ReservationId],
    ) -> Result<Vec<(ReservationId, ReservationStatus)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let rows = self
            .conn()
            .await?
            .query(
                "SELECT id, status FROM reservations WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(|err| describe("read reservation states", &err))?;
        rows.iter()
            .map(|row| {
                let status: &str = column(row, "reservations", "status")?;
                let status = parse_status(status)
                    .ok_or_else(|| bad_row("reservations", format!("unknown status {status:?}")))?;
                Ok((ReservationId(column(row, "reservations", "id")?), status))
            })
            .collect()
    }
}

/// One version per reservation, the one the memory adapter would end with from this batch:
/// the first final state if there is one, else the first `held`. PostgreSQL refuses to update
/// a row twice in one statement. Sorted by id, so concurrent batches lock rows in one order.
fn collapse(events: &[ReservationEvent]) -> BTreeMap<ReservationId, &Reservation> {
    let mut latest = BTreeMap::new();
    for event in events {
        let incoming = &event.reservation;
        match latest.entry(incoming.id) {
            Entry::Vacant(slot) => {
                slot.insert(incoming);
            }
            Entry::Occupied(mut slot) => {
                if !slot.get().status.is_final() && incoming.status.is_final() {
                    slot.insert(incoming);
                }
            }
        }
    }
    latest
}

/// The batch as one array per column, for `UNNEST`.
struct Columns<'a> {
    ids: Vec<Uuid>,
    event_ids: Vec<Uuid>,
    categories: Vec<&'a str>,
    user_ids: Vec<&'a str>,
    qtys: Vec<i32>,
    statuses: Vec<&'static str>,
    created: Vec<DateTime<Utc>>,
    expires: Vec<DateTime<Utc>>,
    updated: Vec<DateTime<Utc>>,
}

impl<'a> Columns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            event_ids: Vec::with_capacity(n),
            categories: Vec::with_capacity(n),
            user_ids: Vec::with_capacity(n),
            qtys: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            created: Vec::with_capacity(n),
            expires: Vec::with_capacity(n),
            updated: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, r: &'a Reservation) -> Result<(), StoreError> {
        let qty = i32::try_from(r.qty.get())
            .map_err(|_| StoreError("postgres: qty does not fit an integer".into()))?;
        self.ids.push(r.id.0);
        self.event_ids.push(r.event_id.0);
        self.categories.push(r.category.as_str());
        self.user_ids.push(r.user_id.as_str());
        self.qtys.push(qty);
        self.statuses.push(r.status.as_str());
        self.created.push(r.created_at);
        self.expires.push(r.expires_at);
        self.updated.push(r.updated_at);
        Ok(())
    }
}

fn reservation(row: &Row) -> Result<Reservation, StoreError> {
    const TABLE: &str = "reservations";
    let bad = |reason: String| bad_row(TABLE, reason);
    let qty: i32 = column(row, TABLE, "qty")?;
    let status: &str = column(row, TABLE, "status")?;
    Ok(Reservation {
        id: ReservationId(column(row, TABLE, "id")?),
        event_id: EventId(column(row, TABLE, "event_id")?),
        category: CategoryName::parse(column(row, TABLE, "category")?).map_err(bad)?,
        user_id: UserId::parse(column(row, TABLE, "user_id")?).map_err(bad)?,
        qty: Qty::new(qty.into()).map_err(bad)?,
        status: parse_status(status).ok_or_else(|| bad(format!("unknown status {status:?}")))?,
        created_at: column(row, TABLE, "created_at")?,
        expires_at: column(row, TABLE, "expires_at")?,
        updated_at: column(row, TABLE, "updated_at")?,
    })
}

fn parse_status(raw: &str) -> Option<ReservationStatus> {
    [
        ReservationStatus::Held,
        ReservationStatus::Confirmed,
        ReservationStatus::Cancelled,
        ReservationStatus::Expired,
    ]
    .into_iter()
    .find(|status| status.as_str() == raw)
}
