//! Node links: the [`NodeHub`] implements the `NodeLink` port over every connected node, in
//! this process (a `NodeDaemon`) or remote (an agent on a WebSocket, in catalyst-http).

mod hub;

pub use hub::NodeHub;
