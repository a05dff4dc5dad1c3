use async_trait::async_trait;
use tokio::sync::mpsc;

use domain::ReservationEvent;
use domain::contracts::EventSource;
use domain::error::StoreError;

/// An in-process reservation stream: what the stock store publishes, the persist trigger reads.
pub fn channel() -> (MemoryEventSink, MemoryEventSource) {
    let (tx, rx) = mpsc::unbounded_channel();
    (MemoryEventSink(tx), MemoryEventSource(rx))
}

#[derive(Clone)]
pub struct MemoryEventSink(mpsc::UnboundedSender<ReservationEvent>);

impl MemoryEventSink {
    /// Never blocks, so it may be called while the stock lock is held: events leave in the
    /// order the changes happened. With no consumer mounted, events are dropped.
    pub fn publish(&self, event: ReservationEvent) {
        let _ = self.0.send(event);
    }
}

pub struct MemoryEventSource(mpsc::UnboundedReceiver<ReservationEvent>);

#[async_trait]
impl EventSource for MemoryEventSource {
    async fn next_batch(
        &mut self,
        max: usize,
    ) -> Result<Option<Vec<ReservationEvent>>, StoreError> {
        let mut batch = Vec::with_capacity(max.min(256));
        let received = self.0.recv_many(&mut batch, max).await;
        Ok((received > 0).then_some(batch))
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        // A channel delivers each event once; there is nothing to acknowledge.
        Ok(())
    }

    fn close(&mut self) {
        self.0.close();
    }
}
