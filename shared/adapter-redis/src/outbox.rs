//! The outbox: each category's stream of events, written by the transition scripts and read
//! by the relay, which deletes entries only once Kafka has acknowledged them.

use super::{RedisStockStore, category_keys};
use domain::error::StoreError;

/// One event waiting in a category's outbox stream.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    stream: String,
    entry_id: String,
    /// The reservation id: the Kafka message key.
    pub key: String,
    /// The event as JSON: the Kafka message value.
    pub payload: String,
}

/// XRANGE's reply: entry id, then the flat field/value list.
type StreamEntries = Vec<(String, Vec<String>)>;

impl RedisStockStore {
    /// Up to `max_per_category` of the oldest events of every category's outbox.
    pub async fn outbox_batch(
        &self,
        max_per_category: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let categories = category_keys(&self.all_categories().await?);
        let replies: Vec<StreamEntries> = self
            .per_category(&categories, |keys| {
                let mut command = redis::cmd("XRANGE");
                command
                    .arg(&keys.outbox)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(max_per_category);
                command
            })
            .await?;
        let mut batch = Vec::new();
        for (keys, entries) in categories.iter().zip(replies) {
            let stream = &keys.outbox;
            for (entry_id, fields) in entries {
                let field = |name: &str| {
                    fields
                        .chunks_exact(2)
                        .find(|pair| pair[0] == name)
                        .map(|pair| pair[1].clone())
                };
                match (field("key"), field("event")) {
                    (Some(key), Some(payload)) => batch.push(OutboxEntry {
                        stream: stream.clone(),
                        entry_id,
                        key,
                        payload,
                    }),
                    _ => tracing::warn!(%stream, %entry_id, "outbox entry without key or event"),
                }
            }
        }
        Ok(batch)
    }

    /// Deletes entries that Kafka has acknowledged.
    pub async fn trim_outbox(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        for entry in entries {
            pipeline
                .cmd("XDEL")
                .arg(&entry.stream)
                .arg(&entry.entry_id)
                .ignore();
        }
        let mut connection = self.connections.get().await?;
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))
    }

    /// Events in every outbox, not yet acknowledged by Kafka.
    pub async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        let categories = category_keys(&self.all_categories().await?);
        let lengths: Vec<u64> = self
            .per_category(&categories, |keys| {
                let mut command = redis::cmd("XLEN");
                command.arg(&keys.outbox);
                command
            })
            .await?;
        Ok(lengths.iter().sum())
    }
}
