//! The outbox: each shard's stream of events, written by the transition scripts and read by
//! the relay, which deletes entries only once Kafka has acknowledged them.

use super::RedisStockStore;
use super::keys::Shard;
use domain::ReservationEvent;
use domain::error::StoreError;

/// One event waiting in a shard's outbox stream.
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
    /// Up to `max_per_shard` of the oldest events of every shard's outbox: one round trip of
    /// one command per shard, however many categories there are.
    pub async fn outbox_batch(&self, max_per_shard: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut pipeline = redis::pipe();
        let shards: Vec<_> = Shard::all().map(Shard::keys).collect();
        for shard in &shards {
            pipeline
                .cmd("XRANGE")
                .arg(&shard.outbox)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(max_per_shard);
        }
        let replies: Vec<StreamEntries> = self.run(&pipeline).await?;
        let mut batch = Vec::new();
        for (shard, entries) in shards.iter().zip(replies) {
            let stream = &shard.outbox;
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

    /// Every event still in the outboxes, decoded: what Kafka may not have yet (reconcile).
    /// An event that cannot be read is an error: nothing may be rebuilt without it.
    pub async fn outbox_events(&self) -> Result<Vec<ReservationEvent>, StoreError> {
        const PAGE: usize = 10_000;
        let mut events = Vec::new();
        for shard in Shard::all() {
            let outbox = &shard.keys().outbox;
            let mut after = "-".to_owned();
            loop {
                let page: StreamEntries = self
                    .query(
                        redis::cmd("XRANGE")
                            .arg(outbox)
                            .arg(&after)
                            .arg("+")
                            .arg("COUNT")
                            .arg(PAGE),
                    )
                    .await?;
                for (entry_id, fields) in &page {
                    let payload = fields
                        .chunks_exact(2)
                        .find(|pair| pair[0] == "event")
                        .map(|pair| pair[1].as_str())
                        .unwrap_or_default();
                    let event = serde_json::from_str(payload).map_err(|err| {
                        StoreError(format!("outbox entry {entry_id} is unreadable: {err}"))
                    })?;
                    events.push(event);
                }
                match page.last() {
                    Some((last, _)) if page.len() == PAGE => after = format!("({last}"),
                    _ => break,
                }
            }
        }
        Ok(events)
    }

    /// Deletes entries that Kafka has acknowledged.
    pub async fn trim_outbox(&self, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        let mut pipeline = redis::pipe();
        for entry in entries {
            pipeline
                .cmd("XDEL")
                .arg(&entry.stream)
                .arg(&entry.entry_id)
                .ignore();
        }
        self.run(&pipeline).await
    }

    /// Events in every outbox, not yet acknowledged by Kafka.
    pub async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        let mut pipeline = redis::pipe();
        for shard in Shard::all() {
            pipeline.cmd("XLEN").arg(&shard.keys().outbox);
        }
        let lengths: Vec<u64> = self.run(&pipeline).await?;
        Ok(lengths.iter().sum())
    }
}
