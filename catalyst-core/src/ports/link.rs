//! How the control plane reaches its nodes ([`NodeLink`], over [`NodeEndpoint`]s) and tells
//! observers what happened ([`EventSink`]).

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::Result;
use crate::events::DomainEvent;
use crate::id::NodeId;
use crate::protocol::{NodeEvent, NodeRequest, NodeResponse};

/// The control plane's handle on its nodes.
///
/// Guarantees: a request to a node that is not connected fails fast with `unavailable`;
/// a request either gets the node's answer or an error within the link's timeout; events of
/// one server arrive in the order the node emitted them.
#[async_trait]
pub trait NodeLink: Send + Sync + std::fmt::Debug {
    /// Send a request and wait for the answer.
    async fn request(&self, node: NodeId, request: NodeRequest) -> Result<NodeResponse>;
    /// Is the node connected right now?
    fn is_online(&self, node: NodeId) -> bool;
    /// Events from every node, from now on.
    fn subscribe(&self) -> BoxStream<'static, (NodeId, NodeEvent)>;
}

/// Publishes domain events. Never blocks; slow observers lose old events, not the publisher.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Publish one event.
    fn publish(&self, event: DomainEvent);
}

/// Something that answers one node's requests: a daemon in this process, or a remote agent
/// (the runtime's `NodeHub` routes [`NodeLink`] requests to them).
#[async_trait]
pub trait NodeEndpoint: Send + Sync + std::fmt::Debug {
    /// Handle one request.
    async fn request(&self, request: NodeRequest) -> Result<NodeResponse>;
}
