//! The node side: the daemon that owns a node's servers and drives the lifecycle table
//! against a `ContainerRuntime`.

mod console;
mod daemon;

pub use console::{Console, ConsoleConfig, ConsoleEntry, Pushed};
pub use daemon::{DaemonConfig, NodeDaemon};
