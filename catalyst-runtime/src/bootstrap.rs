//! Starting Catalyst, written once: the store a URL names, a node daemon in this process, the
//! secret files beside them, and the signal that stops a binary. `catalyst-server`,
//! `catalyst-agent` and `Embedded::open` all start through here, so they cannot drift apart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use catalyst_core::clock::SystemClock;
use catalyst_core::id::NodeId;
use catalyst_core::ports::{Isolation, NetworkMode, Store};
use catalyst_core::{Error, Result};

use crate::node::{DaemonConfig, NodeDaemon, RuntimeChoice};

/// How often a local node reports resource samples of its running servers.
pub const STATS_EVERY: Duration = Duration::from_secs(5);
/// How often a local node reports its health.
pub const HEALTH_EVERY: Duration = Duration::from_secs(30);

/// Open the store `url` names: `postgres://…` or `postgresql://…` for PostgreSQL,
/// `sqlite:<path>`, `sqlite://<path>` or a plain path for SQLite (created if missing).
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(crate::store::PostgresStore::connect(url, None).await?));
        #[cfg(not(feature = "postgres"))]
        return Err(Error::invalid("this build of Catalyst has no PostgreSQL support (feature `postgres`)"));
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    #[cfg(feature = "sqlite")]
    return Ok(Arc::new(crate::store::SqliteStore::open(Path::new(path)).await?));
    #[cfg(not(feature = "sqlite"))]
    return Err(Error::invalid(format!("this build of Catalyst has no SQLite support (feature `sqlite`): {path}")));
}

/// How to run a node in this process.
#[derive(Debug, Clone)]
pub struct NodeBootstrap {
    /// Server files under `node/`, containerd state under `containerd/`, CNI state under `cni/`.
    pub data_dir: PathBuf,
    /// Which container runtime.
    pub runtime: RuntimeChoice,
    /// containerd's socket.
    pub containerd_socket: PathBuf,
    /// containerd namespace and cgroup parent of this node's containers (one per node on a
    /// machine that runs several).
    pub namespace: String,
    /// How containers reach the network.
    pub network: NetworkMode,
    /// Run servers the runtime cannot confine (see [`DaemonConfig::allow_unconfined`]).
    pub allow_unconfined: bool,
}

impl NodeBootstrap {
    /// containerd if it answers, else processes; host networking; namespace `catalyst`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            runtime: RuntimeChoice::Auto,
            containerd_socket: "/run/containerd/containerd.sock".into(),
            namespace: "catalyst".into(),
            network: NetworkMode::Host,
            allow_unconfined: false,
        }
    }
}

/// A node daemon running in this process: runtime chosen, servers recovered, reporters running.
#[derive(Debug, Clone)]
pub struct LocalNode {
    /// The daemon (attach it to a `NodeHub`, or dial a control plane with it).
    pub daemon: NodeDaemon,
    /// Servers adopted from a previous run.
    pub recovered: usize,
    /// What the operator should know: a runtime fallback, the isolation servers get, data
    /// directories other users cannot traverse.
    pub notes: Vec<String>,
}

impl LocalNode {
    /// Choose the runtime, build the daemon, adopt the servers a previous run left and start
    /// the reporters. `shutdown()` on the daemon stops them again.
    pub async fn start(node_id: NodeId, boot: &NodeBootstrap) -> Result<Self> {
        let mut notes = Vec::new();
        let (runtime, fallback) = runtime(boot).await?;
        notes.extend(fallback);
        let isolation = runtime.isolation();
        notes.push(format!(
            "{} runtime: {}",
            runtime.name(),
            crate::node::describe_isolation(isolation, boot.allow_unconfined)
        ));
        if isolation == Isolation::Uid {
            for dir in crate::node::untraversable_ancestors(&boot.data_dir) {
                notes.push(format!(
                    "WARNING: {} is not traversable by other users (mode o-x): servers running as their own uid \
                     cannot reach their directories under it; choose a data directory outside it or chmod o+x it",
                    dir.display()
                ));
            }
        }
        let config = DaemonConfig {
            network: boot.network,
            allow_unconfined: boot.allow_unconfined,
            ..DaemonConfig::new(boot.data_dir.join("node"))
        };
        let daemon = NodeDaemon::new(node_id, runtime, Arc::new(SystemClock), config);
        let recovered = daemon.recover().await?;
        daemon.spawn_reporters(STATS_EVERY, HEALTH_EVERY);
        Ok(Self { daemon, recovered, notes })
    }
}

#[cfg(feature = "containerd")]
async fn runtime(boot: &NodeBootstrap) -> Result<(Arc<dyn catalyst_core::ports::ContainerRuntime>, Option<String>)> {
    let mut cc = crate::node::ContainerdConfig::new(boot.data_dir.join("containerd"));
    cc.socket = boot.containerd_socket.clone();
    cc.namespace = boot.namespace.clone();
    cc.cgroup_parent = boot.namespace.clone();
    cc.cni.state_dir = boot.data_dir.join("cni");
    crate::node::choose_runtime(boot.runtime, cc).await
}

#[cfg(not(feature = "containerd"))]
async fn runtime(boot: &NodeBootstrap) -> Result<(Arc<dyn catalyst_core::ports::ContainerRuntime>, Option<String>)> {
    let process = Arc::new(crate::node::ProcessRuntime::new(Some(boot.namespace.clone())));
    match boot.runtime {
        RuntimeChoice::Containerd => {
            Err(Error::invalid("this build of Catalyst has no containerd support (feature `containerd`)"))
        }
        RuntimeChoice::Auto => {
            Ok((process, Some("built without containerd; running servers as plain processes".into())))
        }
        RuntimeChoice::Process => Ok((process, None)),
    }
}

/// Read a secret kept in `path`, or create it with `make` (mode 0600) on first start.
pub fn persisted_secret(path: &Path, make: impl FnOnce() -> String) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => return Ok(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::internal(format!("cannot read {}", path.display()), e)),
    }
    let secret = make();
    write_private(path, &secret)?;
    Ok(secret)
}

/// Write a new file only its owner can read; an existing file is never overwritten.
pub fn write_private(path: &Path, secret: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(path).and_then(|mut f| std::io::Write::write_all(&mut f, secret.as_bytes()));
    written.map_err(|e| Error::internal(format!("cannot write {}", path.display()), e))
}

/// Resolves on Ctrl-C or SIGTERM: how a binary learns to stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_plain_path_and_sqlite_urls_open_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        for url in [
            dir.path().join("a.db").display().to_string(),
            format!("sqlite:{}", dir.path().join("b.db").display()),
            format!("sqlite://{}", dir.path().join("c.db").display()),
        ] {
            open_store(&url).await.expect("open");
        }
        for name in ["a.db", "b.db", "c.db"] {
            assert!(dir.path().join(name).exists(), "{name} was created");
        }
    }

    #[test]
    fn a_secret_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        let first = persisted_secret(&path, || "one".into()).expect("create");
        let again = persisted_secret(&path, || "two".into()).expect("read");
        assert_eq!((first.as_str(), again.as_str()), ("one", "one"));
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).expect("stat").permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_private(&path, "three").is_err(), "never overwritten");
    }
}
