use catalyst_core::events::DomainEvent;
use catalyst_core::ports::EventSink;
use tokio::sync::broadcast;

/// In-process fan-out of domain events. Slow subscribers lose the oldest events (they see a
/// `Lagged` error), never the publisher.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<DomainEvent>,
}

impl EventBus {
    /// A bus keeping up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        Self { tx: broadcast::channel(capacity.max(16)).0 }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(8192)
    }
}

impl EventSink for EventBus {
    fn publish(&self, event: DomainEvent) {
        // No subscribers is fine.
        let _ = self.tx.send(event);
    }
}
