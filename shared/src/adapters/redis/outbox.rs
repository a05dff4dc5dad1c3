//! The outbox: each category's stream of events, written by the transition scripts and read
//! by the relay, which deletes entries only once Kafka has acknowledged them.

use super::RedisStockStore;
use super::keys::CategoryKeys;
use crate::error::StoreError;

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
        let streams: Vec<String> = self
            .all_categories()
            .await?
            .into_iter()
            .map(|(event, name)| CategoryKeys::new(event, &name).outbox)
            .collect();
        if streams.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipeline = redis::pipe();
        for stream in &streams {
            pipeline
                .cmd("XRANGE")
                .arg(stream)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(max_per_category);
        }
        let mut connection = self.connections.get().await?;
        let replies: Vec<StreamEntries> = pipeline
            .query_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))?;
        let mut batch = Vec::new();
        for (stream, entries) in streams.iter().zip(replies) {
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
        let categories = self.all_categories().await?;
        let mut pipeline = redis::pipe();
        for (event, name) in &categories {
            pipeline
                .cmd("XLEN")
                .arg(CategoryKeys::new(*event, name).outbox);
        }
        let mut connection = self.connections.get().await?;
        let lengths: Vec<u64> = pipeline
            .query_async(&mut connection)
            .await
            .map_err(|err| self.connections.failed(err))?;
        Ok(lengths.iter().sum())
    }
}
