//! The node's events on their way out: every subscriber gets each one, tagged with the node.

use std::sync::{Arc, Mutex};

use catalyst_core::id::NodeId;
use catalyst_core::protocol::NodeEvent;
use futures::channel::mpsc;

use crate::sync::lock;

/// Where one subscriber's events go.
type Subscriber = mpsc::UnboundedSender<(NodeId, NodeEvent)>;

/// Fans a node's events out to its subscribers; cheap to clone, so the data plane (file
/// operations, backups, SFTP sessions) reports through it without knowing who listens.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    node_id: NodeId,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

impl EventSink {
    /// A sink with no subscribers yet.
    pub(crate) fn new(node_id: NodeId) -> Self {
        Self { node_id, subscribers: Arc::default() }
    }

    /// Events from now on.
    pub(crate) fn subscribe(&self) -> mpsc::UnboundedReceiver<(NodeId, NodeEvent)> {
        let (tx, rx) = mpsc::unbounded();
        lock(&self.subscribers).push(tx);
        rx
    }

    /// Hand `event` to every subscriber, dropping those that went away.
    pub(crate) fn emit(&self, event: NodeEvent) {
        lock(&self.subscribers).retain(|s| s.unbounded_send((self.node_id, event.clone())).is_ok());
    }

    /// End every subscription.
    pub(crate) fn close(&self) {
        lock(&self.subscribers).clear();
    }
}
