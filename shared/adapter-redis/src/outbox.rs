//! The outbox: each shard's stream of events, written by the transition scripts and read by
//! the relay, which deletes entries only once Kafka has acknowledged them.

use futures_util::future::join_all;
use redis::{Pipeline, Value};

use super::keys::Shard;
use super::{RedisStockStore, parse_value};
use domain::ReservationEvent;
use domain::error::StoreError;

/// One event waiting in a shard's outbox stream.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    shard: Shard,
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
    /// one command per shard, however many categories there are. With replica acks, only
    /// events replicas have: a shard whose replicas lag gives nothing this time.
    pub async fn outbox_batch(&self, max_per_shard: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let pipelines: Vec<Pipeline> = Shard::all()
            .map(|shard| {
                let mut pipeline = redis::pipe();
                pipeline
                    .cmd("XRANGE")
                    .arg(&shard.keys().outbox)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(max_per_shard);
                pipeline
            })
            .collect();
        let replies = self.on_shards(&pipelines, None).await?;
        let read = replies.iter().map(
            |replies| matches!(replies.first(), Some(Value::Array(entries)) if !entries.is_empty()),
        );
        let replicated = self.replicated(read).await;
        let mut batch = Vec::new();
        for ((shard, mut replies), replicated) in Shard::all().zip(replies).zip(replicated) {
            if let Err(err) = replicated {
                tracing::warn!(%err, "outbox events held back until replicas have them");
                continue;
            }
            let entries: StreamEntries = parse_value(replies.pop().unwrap_or(Value::Nil))?;
            let stream = &shard.keys().outbox;
            for (entry_id, fields) in entries {
                let field = |name: &str| {
                    fields
                        .chunks_exact(2)
                        .find(|pair| pair[0] == name)
                        .map(|pair| pair[1].clone())
                };
                match (field("key"), field("event")) {
                    (Some(key), Some(payload)) => batch.push(OutboxEntry {
                        shard,
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

    /// Per shard, whether its replicas have what was read of it (those `read`), waited for
    /// together; without replica acks, at once.
    async fn replicated(&self, read: impl Iterator<Item = bool>) -> Vec<Result<(), StoreError>> {
        let durability = self.durability.as_ref();
        join_all(Shard::all().zip(read).map(|(shard, read)| async move {
            match durability {
                Some(durability) if read => durability.confirm(shard).await,
                _ => Ok(()),
            }
        }))
        .await
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
        let deletes = entries.iter().map(|entry| {
            let mut command = redis::cmd("XDEL");
            command.arg(&entry.shard.keys().outbox).arg(&entry.entry_id);
            (entry.shard, command)
        });
        let _: Vec<Value> = self.by_shard(deletes).await?;
        Ok(())
    }

    /// Events in every outbox, not yet acknowledged by Kafka.
    pub async fn outbox_backlog(&self) -> Result<u64, StoreError> {
        let lengths: Vec<u64> = self
            .by_shard(Shard::all().map(|shard| {
                let mut command = redis::cmd("XLEN");
                command.arg(&shard.keys().outbox);
                (shard, command)
            }))
            .await?;
        Ok(lengths.iter().sum())
    }
}
