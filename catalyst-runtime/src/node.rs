//! The node side: the daemon that owns a node's servers and drives the lifecycle table
//! against a `ContainerRuntime`.

mod cgroup;
mod console;
#[cfg(feature = "containerd")]
mod containerd;
mod daemon;
mod data;
mod events;
mod exporter;
mod process_runtime;
mod server_users;
#[cfg(feature = "sftp")]
mod sftp;

pub use cgroup::Cgroup;
pub use console::{Console, ConsoleBatch, ConsoleConfig, ConsoleEntry, ConsoleReader, Pushed};
#[cfg(feature = "containerd")]
pub use containerd::{CniConfig, ContainerdConfig, ContainerdRuntime, RegistryConfig};
pub use daemon::{DaemonConfig, NodeDaemon};
pub use data::archive::{Ignore, Limited, Unpacked, pack, pack_stream, unpack, unpack_stream};
pub use data::backup_target::open_target;
pub use data::sandbox::{Access, Sandbox};
pub use exporter::NodeExporter;
pub use process_runtime::ProcessRuntime;
pub use server_users::{DEFAULT_SERVER_UIDS, describe as describe_isolation, make_private, untraversable_ancestors};
#[cfg(feature = "sftp")]
pub use sftp::{SftpConfig, host_key};

#[cfg(feature = "sftp")]
/// Serve SFTP for the servers of `daemon` on `listener` until the task is dropped (see
/// [`SftpAuthority`](catalyst_core::ports::SftpAuthority) for how logins are checked).
pub async fn serve_sftp(
    listener: tokio::net::TcpListener,
    daemon: NodeDaemon,
    authority: std::sync::Arc<dyn catalyst_core::ports::SftpAuthority>,
    config: SftpConfig,
) -> std::io::Result<()> {
    sftp::serve(listener, std::sync::Arc::new(daemon), authority, config).await
}

/// Which container runtime a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// containerd when its socket answers, else plain processes.
    Auto,
    /// containerd only.
    Containerd,
    /// Plain child processes.
    Process,
}

impl std::str::FromStr for RuntimeChoice {
    type Err = catalyst_core::Error;

    /// `auto`, `containerd` or `process`.
    fn from_str(s: &str) -> catalyst_core::Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "containerd" => Ok(Self::Containerd),
            "process" => Ok(Self::Process),
            other => Err(catalyst_core::Error::invalid(format!("{other:?} is not auto, containerd or process"))),
        }
    }
}

/// Build the runtime a node asked for. With `Auto`, an unreachable containerd falls back to
/// processes (the reason is returned for the operator).
#[cfg(feature = "containerd")]
pub async fn choose_runtime(
    choice: RuntimeChoice,
    containerd: ContainerdConfig,
) -> catalyst_core::Result<(std::sync::Arc<dyn catalyst_core::ports::ContainerRuntime>, Option<String>)> {
    use std::sync::Arc;
    match choice {
        RuntimeChoice::Process => Ok((Arc::new(ProcessRuntime::new(Some("catalyst".into()))), None)),
        RuntimeChoice::Containerd => Ok((Arc::new(ContainerdRuntime::connect(containerd).await?), None)),
        RuntimeChoice::Auto => match ContainerdRuntime::connect(containerd).await {
            Ok(rt) => Ok((Arc::new(rt), None)),
            Err(e) => Ok((
                Arc::new(ProcessRuntime::new(Some("catalyst".into()))),
                Some(format!("containerd is not reachable ({e}); running servers as plain processes")),
            )),
        },
    }
}
