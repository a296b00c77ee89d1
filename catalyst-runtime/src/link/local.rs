use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use catalyst_core::id::NodeId;
use catalyst_core::ports::NodeLink;
use catalyst_core::protocol::{NodeEvent, NodeRequest, NodeResponse};
use catalyst_core::{Error, Result};
use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::BoxStream;

use crate::node::NodeDaemon;

/// Daemons in this process, reached by direct calls.
#[derive(Debug, Default, Clone)]
pub struct LocalLink {
    daemons: Arc<RwLock<HashMap<NodeId, NodeDaemon>>>,
    subscribers: Arc<Mutex<Vec<EventSender>>>,
}

type EventSender = mpsc::UnboundedSender<(NodeId, NodeEvent)>;

impl LocalLink {
    /// A link with no nodes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connect a daemon; its events flow to every subscriber.
    pub fn add_node(&self, daemon: NodeDaemon) {
        let mut events = daemon.subscribe();
        let subscribers = self.subscribers.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let mut subs = subscribers.lock().unwrap_or_else(|p| p.into_inner());
                subs.retain(|s| s.unbounded_send(event.clone()).is_ok());
            }
        });
        self.daemons.write().unwrap_or_else(|p| p.into_inner()).insert(daemon.node_id(), daemon);
    }

    /// Disconnect a node (its requests then fail with `unavailable`).
    pub fn remove_node(&self, node: NodeId) {
        self.daemons.write().unwrap_or_else(|p| p.into_inner()).remove(&node);
    }
}

#[async_trait]
impl NodeLink for LocalLink {
    async fn request(&self, node: NodeId, request: NodeRequest) -> Result<NodeResponse> {
        let daemon = self.daemons.read().unwrap_or_else(|p| p.into_inner()).get(&node).cloned();
        match daemon {
            Some(d) => d.handle(request).await,
            None => Err(Error::unavailable("the node is offline")),
        }
    }

    fn is_online(&self, node: NodeId) -> bool {
        self.daemons.read().unwrap_or_else(|p| p.into_inner()).contains_key(&node)
    }

    fn subscribe(&self) -> BoxStream<'static, (NodeId, NodeEvent)> {
        let (tx, rx) = mpsc::unbounded();
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx.boxed()
    }
}
