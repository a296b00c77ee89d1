//! The container runtime port: what a node runs servers on.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::Result;
use crate::model::{Allocation, Limits, LogStream};

/// How a container reaches the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// Share the host's network namespace.
    #[default]
    Host,
    /// Own namespace on a bridge, allocations forwarded (CNI).
    Bridge,
}

/// A bind mount.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Host path.
    pub source: String,
    /// Path inside the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    /// Container id (unique per runtime).
    pub id: String,
    /// Image reference.
    pub image: String,
    /// argv.
    pub command: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Bind mounts (the server directory at `/home/container`).
    pub mounts: Vec<Mount>,
    /// Working directory inside the container.
    pub workdir: String,
    /// Limits.
    pub limits: Limits,
    /// Ports to expose.
    pub allocations: Vec<Allocation>,
    /// Network mode.
    pub network: NetworkMode,
    /// Size of the `/tmp` tmpfs in MiB.
    pub tmpfs_mb: u64,
    /// Mount the root file system read-only.
    pub read_only_rootfs: bool,
    /// Run as this `(uid, gid)`; `None` keeps the image's (or the agent's) user.
    pub user: Option<(u32, u32)>,
}

/// A signal to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGHUP.
    Hup,
    /// SIGQUIT.
    Quit,
    /// SIGABRT.
    Abrt,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGKILL, to every process of the container.
    Kill,
}

impl Signal {
    /// Parse `SIGTERM`, `TERM`, `sigint`, ….
    pub fn parse(s: &str) -> Result<Self> {
        let upper = s.trim().to_ascii_uppercase();
        match upper.strip_prefix("SIG").unwrap_or(&upper) {
            "TERM" => Ok(Signal::Term),
            "INT" => Ok(Signal::Int),
            "HUP" => Ok(Signal::Hup),
            "QUIT" => Ok(Signal::Quit),
            "ABRT" => Ok(Signal::Abrt),
            "USR1" => Ok(Signal::Usr1),
            "USR2" => Ok(Signal::Usr2),
            "KILL" => Ok(Signal::Kill),
            _ => Err(crate::Error::invalid(format!("unsupported signal {s:?}"))),
        }
    }

    /// The POSIX number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Quit => 3,
            Signal::Abrt => 6,
            Signal::Kill => 9,
            Signal::Usr1 => 10,
            Signal::Usr2 => 12,
            Signal::Term => 15,
        }
    }
}

/// How a container's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitStatus {
    /// Exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// Killed by the OOM killer.
    pub oom: bool,
}

/// One line of container output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleLine {
    /// Stream.
    pub stream: LogStream,
    /// Text without the newline (lossy UTF-8, capped by the runtime).
    pub line: String,
}

/// A live resource sample of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerStats {
    /// CPU percent of one core since the previous sample.
    pub cpu_percent: f64,
    /// Memory in use.
    pub memory_bytes: u64,
    /// Memory limit.
    pub memory_limit_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// A container the runtime knows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// Is its task running?
    pub running: bool,
}

/// How a runtime keeps servers apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Each server in its own namespaces (containers): it sees only its own mounts.
    Namespaces,
    /// The host's file system is shared; each server runs as its own unprivileged uid, without
    /// capabilities or new privileges, so permissions keep it out of what is not its own.
    Uid,
    /// Nothing: servers run as the node's own user and can read everything it can.
    None,
}

/// Runs containers (containerd, plain processes, or a fake).
///
/// Guarantees: `attach` before `start` sees every line from the first; `wait` may be called
/// before or after the exit and returns the same status; `signal(Kill)` reaches every
/// process of the container; `remove` of a missing container is `not_found`; containers keep
/// running when the runtime object is dropped (re-attach with `list` + `attach`).
#[async_trait]
pub trait ContainerRuntime: Send + Sync + std::fmt::Debug {
    /// Short name for logs (`containerd`, `process`, `fake`).
    fn name(&self) -> &'static str;
    /// What keeps one server from another's files and from the node's own; the node gives
    /// each server its own uid on [`Isolation::Uid`] and refuses [`Isolation::None`] unless
    /// its operator allowed unconfined servers.
    fn isolation(&self) -> Isolation {
        Isolation::Namespaces
    }
    /// The address a server on `network` reaches the node at (what eggs call
    /// `{{config.docker.interface}}`).
    fn node_address(&self, network: NetworkMode) -> String {
        let _ = network;
        "127.0.0.1".into()
    }
    /// Make the image available locally.
    async fn ensure_image(&self, image: &str) -> Result<()>;
    /// Create a container; `conflict` if the id exists.
    async fn create(&self, spec: &ContainerSpec) -> Result<()>;
    /// Start its main process.
    async fn start(&self, id: &str) -> Result<()>;
    /// Output lines from now on.
    async fn attach(&self, id: &str) -> Result<BoxStream<'static, ConsoleLine>>;
    /// Write to standard input.
    async fn write_stdin(&self, id: &str, data: &[u8]) -> Result<()>;
    /// Send a signal to the main process (`Kill`: to all).
    async fn signal(&self, id: &str, signal: Signal) -> Result<()>;
    /// Wait for the main process to exit.
    async fn wait(&self, id: &str) -> Result<ExitStatus>;
    /// A resource sample.
    async fn stats(&self, id: &str) -> Result<ContainerStats>;
    /// Change limits in place.
    async fn update_limits(&self, id: &str, limits: &Limits) -> Result<()>;
    /// Remove a stopped container.
    async fn remove(&self, id: &str) -> Result<()>;
    /// Containers this runtime manages.
    async fn list(&self) -> Result<Vec<ContainerInfo>>;
}
