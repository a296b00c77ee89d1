//! The node side: the daemon that owns a node's servers and drives the lifecycle table
//! against a `ContainerRuntime`.

mod daemon;

pub use daemon::{DaemonConfig, NodeDaemon};
