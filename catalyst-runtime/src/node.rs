//! The node side: the daemon that owns a node's servers and drives the lifecycle table
//! against a `ContainerRuntime`.

mod cgroup;
mod console;
#[cfg(feature = "containerd")]
mod containerd;
mod daemon;
mod process_runtime;

pub use cgroup::Cgroup;
pub use console::{Console, ConsoleBatch, ConsoleConfig, ConsoleEntry, ConsoleReader, Pushed};
#[cfg(feature = "containerd")]
pub use containerd::{CniConfig, ContainerdConfig, ContainerdRuntime, RegistryConfig};
pub use daemon::{DaemonConfig, NodeDaemon};
pub use process_runtime::ProcessRuntime;
