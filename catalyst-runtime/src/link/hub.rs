use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use catalyst_core::id::NodeId;
use catalyst_core::ports::{NodeEndpoint, NodeLink};
use catalyst_core::protocol::{NodeEvent, NodeRequest, NodeResponse};
use catalyst_core::{Error, Result};
use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::BoxStream;

use crate::node::NodeDaemon;
use crate::sync::lock;

#[async_trait]
impl NodeEndpoint for NodeDaemon {
    async fn request(&self, request: NodeRequest) -> Result<NodeResponse> {
        self.handle(request).await
    }
}

type EventSender = mpsc::UnboundedSender<(NodeId, NodeEvent)>;

/// Every connected node, reached by id. A node that is not connected answers `unavailable` at
/// once.
#[derive(Debug, Default, Clone)]
pub struct NodeHub {
    endpoints: Arc<RwLock<HashMap<NodeId, Arc<dyn NodeEndpoint>>>>,
    subscribers: Arc<Mutex<Vec<EventSender>>>,
}

impl NodeHub {
    /// A hub with no nodes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connect a daemon of this process; its events flow to every subscriber until the
    /// daemon shuts down (the forwarding task is the daemon's).
    pub fn add_node(&self, daemon: NodeDaemon) {
        let mut events = daemon.subscribe();
        let hub = self.clone();
        daemon.background().spawn(async move {
            while let Some((node, event)) = events.next().await {
                hub.publish(node, event);
            }
        });
        self.attach(daemon.node_id(), Arc::new(daemon));
    }

    /// Route requests for `node` to `endpoint` (replacing an older connection).
    pub fn attach(&self, node: NodeId, endpoint: Arc<dyn NodeEndpoint>) {
        self.endpoints.write().unwrap_or_else(|p| p.into_inner()).insert(node, endpoint);
    }

    /// Forget `node` if `endpoint` is still the one attached (a newer connection stays).
    pub fn detach(&self, node: NodeId, endpoint: &Arc<dyn NodeEndpoint>) {
        let mut endpoints = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
        if endpoints.get(&node).is_some_and(|e| Arc::ptr_eq(e, endpoint)) {
            endpoints.remove(&node);
        }
    }

    /// Disconnect a node whatever its endpoint.
    pub fn remove_node(&self, node: NodeId) {
        self.endpoints.write().unwrap_or_else(|p| p.into_inner()).remove(&node);
    }

    /// Deliver an event from `node` to every subscriber.
    pub fn publish(&self, node: NodeId, event: NodeEvent) {
        let mut subs = lock(&self.subscribers);
        subs.retain(|s| s.unbounded_send((node, event.clone())).is_ok());
    }
}

#[async_trait]
impl NodeLink for NodeHub {
    async fn request(&self, node: NodeId, request: NodeRequest) -> Result<NodeResponse> {
        let endpoint = self.endpoints.read().unwrap_or_else(|p| p.into_inner()).get(&node).cloned();
        match endpoint {
            Some(e) => e.request(request).await,
            None => Err(Error::unavailable("the node is offline")),
        }
    }

    fn is_online(&self, node: NodeId) -> bool {
        self.endpoints.read().unwrap_or_else(|p| p.into_inner()).contains_key(&node)
    }

    fn subscribe(&self) -> BoxStream<'static, (NodeId, NodeEvent)> {
        let (tx, rx) = mpsc::unbounded();
        lock(&self.subscribers).push(tx);
        rx.boxed()
    }
}
