//! `ContainerdRuntime`: the `ContainerRuntime` port on containerd (1.6+) over its gRPC API.
//!
//! Containers live in their own namespace and are labelled as ours. Stdout and stderr go to a
//! log file written by the shim (followed with inotify), stdin is a FIFO we hold open read-write,
//! and every snapshot is prepared under a lease, so nothing depends on the agent staying up:
//! containers keep running while it restarts, and `list` + `attach` + `wait` pick them up again.

mod client;
mod cni;
mod image;
mod spec;
mod tail;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use catalyst_core::model::Limits;
use catalyst_core::ports::{
    ConsoleLine, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerStats, ExitStatus, Signal,
};
use catalyst_core::{Error, ErrorKind, Result};
use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest};
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest, DeleteTaskRequest,
    GetContainerRequest, GetRequest, KillRequest, ListContainersRequest, StartRequest, WaitRequest,
};
use futures::stream::BoxStream;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex as AsyncMutex, watch};
use tonic::Code;

use self::client::{Client, status_err};
pub use self::cni::CniConfig;
pub use self::image::{RegistryConfig, Unpacked};
use super::cgroup::Cgroup;
use crate::sync::lock;

const MANAGED_LABEL: &str = "catalyst.managed";
const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Where and how to reach containerd.
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// The gRPC socket.
    pub socket: PathBuf,
    /// Our namespace.
    pub namespace: String,
    /// Snapshotter for root file systems.
    pub snapshotter: String,
    /// Shim runtime.
    pub runtime: String,
    /// FIFOs and log files live here.
    pub state_dir: PathBuf,
    /// Cgroup parent of every container.
    pub cgroup_parent: String,
    /// Registries with credentials or plain HTTP; others are pulled anonymously over HTTPS.
    pub registries: Vec<RegistryConfig>,
    /// Bridge networking (for containers created with `NetworkMode::Bridge`).
    pub cni: CniConfig,
}

impl ContainerdConfig {
    /// Defaults: `/run/containerd/containerd.sock`, namespace `catalyst`, overlayfs, runc v2,
    /// cgroups under `/catalyst`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            socket: "/run/containerd/containerd.sock".into(),
            namespace: "catalyst".into(),
            snapshotter: "overlayfs".into(),
            runtime: "io.containerd.runc.v2".into(),
            state_dir: state_dir.into(),
            cgroup_parent: "catalyst".into(),
            cni: CniConfig::new(Path::new("/var/lib/catalyst/cni")),
            registries: Vec::new(),
        }
    }
}

/// Containers on containerd.
#[derive(Debug, Clone)]
pub struct ContainerdRuntime {
    client: Client,
    config: Arc<ContainerdConfig>,
    images: Arc<Mutex<HashMap<String, Unpacked>>>,
    tasks: Arc<Mutex<HashMap<String, Arc<TaskState>>>>,
}

#[derive(Debug)]
struct TaskState {
    exit: watch::Sender<Option<ExitStatus>>,
    exited: watch::Sender<bool>,
    stdin: AsyncMutex<Option<tokio::net::unix::pipe::Sender>>,
    /// Started by this process (read its log from the start) rather than re-attached.
    fresh: bool,
    cpu_prev: Mutex<Option<(u64, Instant)>>,
}

impl ContainerdRuntime {
    /// Connect and check that containerd answers.
    pub async fn connect(config: ContainerdConfig) -> Result<Self> {
        let channel = containerd_client::connect(&config.socket).await.map_err(|e| {
            Error::unavailable(format!("cannot reach containerd at {}", config.socket.display())).with_source(e)
        })?;
        let client = Client::new(channel, &config.namespace)?;
        containerd_client::services::v1::version_client::VersionClient::new(client.channel.clone())
            .version(())
            .await
            .map_err(|s| status_err("containerd version", s))?;
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| Error::internal("cannot create the containerd state directory", e))?;
        Ok(Self { client, config: Arc::new(config), images: Arc::default(), tasks: Arc::default() })
    }

    /// Import an OCI image layout tar (as written by `skopeo`, `buildah` or our test builder) as
    /// image `name`, and unpack it.
    pub async fn import_oci_layout(&self, path: &Path, name: &str) -> Result<()> {
        let unpacked = image::import_oci_layout(&self.client, &self.config.snapshotter, path, name).await?;
        lock(&self.images).insert(name.to_string(), unpacked);
        Ok(())
    }

    /// Pull `image` from its registry (credentials from the config) and unpack it.
    pub async fn pull(&self, image: &str) -> Result<()> {
        let reference: oci_client::Reference =
            image.parse().map_err(|e| Error::invalid(format!("image reference {image:?}: {e}")))?;
        let registry = self
            .config
            .registries
            .iter()
            .find(|r| r.host == reference.resolve_registry() || r.host == reference.registry());
        let unpacked = image::pull(&self.client, &self.config.snapshotter, &reference, registry).await?;
        let mut images = lock(&self.images);
        images.insert(reference.whole(), unpacked.clone());
        images.insert(image.to_string(), unpacked);
        Ok(())
    }

    async fn unpacked(&self, name: &str) -> Result<Unpacked> {
        if let Some(u) = lock(&self.images).get(name).cloned() {
            return Ok(u);
        }
        let u = image::unpack(&self.client, &self.config.snapshotter, name).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::not_found(&format!("image {name} on this node (import or pull it first)"))
            } else {
                e
            }
        })?;
        lock(&self.images).insert(name.to_string(), u.clone());
        Ok(u)
    }

    fn fifo(&self, id: &str) -> PathBuf {
        self.config.state_dir.join(format!("{id}.stdin"))
    }

    fn ports_file(&self, id: &str) -> PathBuf {
        self.config.state_dir.join(format!("{id}.ports.json"))
    }

    fn log(&self, id: &str) -> PathBuf {
        self.config.state_dir.join(format!("{id}.log"))
    }

    fn cgroup(&self, id: &str) -> Cgroup {
        Cgroup::open(&self.config.cgroup_parent, id)
    }

    fn state(&self, id: &str) -> Option<Arc<TaskState>> {
        lock(&self.tasks).get(id).cloned()
    }

    /// Track a container's task (not yet its exit: see `spawn_wait`).
    fn new_state(&self, id: &str, fresh: bool) -> Arc<TaskState> {
        let state = Arc::new(TaskState {
            exit: watch::channel(None).0,
            exited: watch::channel(false).0,
            stdin: AsyncMutex::new(None),
            fresh,
            cpu_prev: Mutex::new(None),
        });
        lock(&self.tasks).insert(id.to_string(), state.clone());
        state
    }

    /// A `Wait` call that records the exit (with the OOM flag from the cgroup).
    fn spawn_wait(&self, id: &str, state: Arc<TaskState>) {
        let (client, id, cg) = (self.client.clone(), id.to_string(), self.cgroup(id));
        tokio::spawn(async move {
            let waited = TasksClient::new(client.channel.clone())
                .wait(client.req(WaitRequest { container_id: id, exec_id: String::new() }))
                .await;
            let status = match waited {
                Ok(r) => {
                    let code = r.into_inner().exit_status;
                    let oom = cg.oom_killed();
                    // 128 + n means "killed by signal n" for the shim.
                    let code = if code > 128 && code < 160 { None } else { i32::try_from(code).ok() };
                    ExitStatus { code, oom }
                }
                Err(_) => ExitStatus { code: None, oom: false },
            };
            state.exit.send_replace(Some(status));
            state.exited.send_replace(true);
        });
    }

    /// The tracked state of a running task, picking up a task started by an earlier agent.
    async fn live_state(&self, id: &str) -> Result<Arc<TaskState>> {
        if let Some(s) = self.state(id) {
            return Ok(s);
        }
        if self.task_running(id).await?.is_none() {
            return Err(Error::not_found("container task"));
        }
        let state = self.new_state(id, false);
        self.spawn_wait(id, state.clone());
        Ok(state)
    }

    async fn task_running(&self, id: &str) -> Result<Option<bool>> {
        match TasksClient::new(self.client.channel.clone())
            .get(self.client.req(GetRequest { container_id: id.to_string(), exec_id: String::new() }))
            .await
        {
            Ok(r) => Ok(Some(r.into_inner().process.is_some_and(|p| p.status == 2))),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(status_err("get task", s)),
        }
    }

    /// `(rx, tx)` bytes of the task's `eth0`.
    async fn net_counters(&self, id: &str) -> Option<(u64, u64)> {
        let pid = TasksClient::new(self.client.channel.clone())
            .get(self.client.req(GetRequest { container_id: id.to_string(), exec_id: String::new() }))
            .await
            .ok()?
            .into_inner()
            .process?
            .pid;
        let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
        let line = dev.lines().find(|l| l.trim_start().starts_with("eth0:"))?;
        let fields: Vec<u64> = line.split_once(':')?.1.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        Some((*fields.first()?, *fields.get(8)?))
    }

    async fn open_stdin(&self, id: &str) -> Result<tokio::net::unix::pipe::Sender> {
        tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(self.fifo(id))
            .map_err(|e| Error::internal("cannot open the container's stdin", e))
    }
}

fn swap_accounting() -> bool {
    !Path::new("/sys/fs/cgroup/memory").exists()
        || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

#[async_trait]
impl ContainerRuntime for ContainerdRuntime {
    fn name(&self) -> &'static str {
        "containerd"
    }

    fn node_address(&self, network: catalyst_core::ports::NetworkMode) -> String {
        match network {
            catalyst_core::ports::NetworkMode::Bridge => cni::gateway(&self.config.cni.subnet),
            catalyst_core::ports::NetworkMode::Host => "127.0.0.1".into(),
        }
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        match self.unpacked(image).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => self.pull(image).await,
            Err(e) => Err(e),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<()> {
        // An existing container is left untouched: nothing below may clean up its resources.
        let existing = ContainersClient::new(self.client.channel.clone())
            .get(self.client.req(GetContainerRequest { id: spec.id.clone() }))
            .await;
        match existing {
            Ok(_) => return Err(Error::conflict(format!("container {} exists", spec.id))),
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(status_err("get container", s)),
        }
        // A snapshot without a container is debris of an interrupted create.
        let _ = SnapshotsClient::new(self.client.channel.clone())
            .remove(
                self.client
                    .req(RemoveSnapshotRequest { snapshotter: self.config.snapshotter.clone(), key: spec.id.clone() }),
            )
            .await;
        let unpacked = self.unpacked(&spec.image).await?;
        let args = spec::argv(spec, &unpacked.defaults)?;
        let netns = match spec.network {
            catalyst_core::ports::NetworkMode::Bridge => {
                // Port mappings are removed by the same list they were added with: keep it.
                let ports = serde_json::to_vec(&spec.allocations).unwrap_or_default();
                std::fs::write(self.ports_file(&spec.id), ports)
                    .map_err(|e| Error::internal("cannot record port mappings", e))?;
                Some(cni::setup(&self.config.cni, &spec.id, &spec.allocations).await?)
            }
            catalyst_core::ports::NetworkMode::Host => None,
        };
        let netns_str = netns.as_ref().map(|p| p.to_string_lossy().into_owned());
        let oci = spec::build(
            spec,
            &args,
            &unpacked.defaults,
            &self.cgroup(&spec.id).oci_path(),
            netns_str.as_deref(),
            swap_accounting(),
        );
        let c = &self.client;
        let lease = image::create_lease(c).await?;
        let result = async {
            SnapshotsClient::new(c.channel.clone())
                .prepare(c.leased(
                    PrepareSnapshotRequest {
                        snapshotter: self.config.snapshotter.clone(),
                        key: spec.id.clone(),
                        parent: unpacked.chain_id.clone(),
                        labels: HashMap::new(),
                    },
                    &lease,
                ))
                .await
                .map_err(|s| status_err("prepare root file system", s))?;
            let mut labels = HashMap::new();
            labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
            let container = Container {
                id: spec.id.clone(),
                labels,
                image: spec.image.clone(),
                runtime: Some(Runtime { name: self.config.runtime.clone(), options: None }),
                spec: Some(prost_types::Any {
                    type_url: SPEC_TYPE.into(),
                    value: serde_json::to_vec(&oci).unwrap_or_default(),
                }),
                snapshotter: self.config.snapshotter.clone(),
                snapshot_key: spec.id.clone(),
                ..Default::default()
            };
            ContainersClient::new(c.channel.clone())
                .create(c.leased(CreateContainerRequest { container: Some(container) }, &lease))
                .await
                .map_err(|s| status_err("create container", s))?;
            Ok::<_, Error>(())
        }
        .await;
        image::delete_lease(c, &lease).await;
        if result.is_ok() {
            // Readers may attach before the start: give them a log to follow.
            std::fs::write(self.log(&spec.id), b"").map_err(|e| Error::internal("cannot create the log file", e))?;
            self.new_state(&spec.id, true);
        }
        if result.is_err() {
            cni::teardown(&self.config.cni, &spec.id, &spec.allocations).await;
            let _ = SnapshotsClient::new(c.channel.clone())
                .remove(
                    c.req(RemoveSnapshotRequest { snapshotter: self.config.snapshotter.clone(), key: spec.id.clone() }),
                )
                .await;
        }
        result
    }

    async fn start(&self, id: &str) -> Result<()> {
        let c = &self.client;
        let (fifo, log) = (self.fifo(id), self.log(id));
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::internal("cannot create the stdin FIFO", e))?;
        if !log.exists() {
            std::fs::write(&log, b"").map_err(|e| Error::internal("cannot create the log file", e))?;
        }
        let stdin = self.open_stdin(id).await?;
        let mounts = SnapshotsClient::new(c.channel.clone())
            .mounts(c.req(MountsRequest { snapshotter: self.config.snapshotter.clone(), key: id.to_string() }))
            .await
            .map_err(|s| status_err("root file system", s))?
            .into_inner()
            .mounts;
        let log_uri = format!("file://{}", log.display());
        TasksClient::new(c.channel.clone())
            .create(c.req(CreateTaskRequest {
                container_id: id.to_string(),
                rootfs: mounts,
                stdin: fifo.to_string_lossy().into_owned(),
                stdout: log_uri.clone(),
                stderr: log_uri,
                terminal: false,
                ..Default::default()
            }))
            .await
            .map_err(|s| status_err("create task", s))?;
        // Wait before Start, or an early exit is missed.
        let state = self.state(id).unwrap_or_else(|| self.new_state(id, true));
        self.spawn_wait(id, state.clone());
        *state.stdin.lock().await = Some(stdin);
        if let Err(s) = TasksClient::new(c.channel.clone())
            .start(c.req(StartRequest { container_id: id.to_string(), exec_id: String::new() }))
            .await
        {
            let _ = TasksClient::new(c.channel.clone())
                .delete(c.req(DeleteTaskRequest { container_id: id.to_string() }))
                .await;
            return Err(status_err("start task", s));
        }
        Ok(())
    }

    async fn attach(&self, id: &str) -> Result<BoxStream<'static, ConsoleLine>> {
        let state = match self.state(id) {
            Some(s) => s,
            None => self.live_state(id).await?,
        };
        let log = self.log(id);
        if !log.exists() {
            std::fs::write(&log, b"").map_err(|e| Error::internal("cannot create the log file", e))?;
        }
        let start = if state.fresh { 0 } else { std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) };
        Ok(tail::follow(log, start, state.exited.subscribe()))
    }

    async fn write_stdin(&self, id: &str, data: &[u8]) -> Result<()> {
        let state = self.live_state(id).await?;
        if *state.exited.borrow() {
            return Err(Error::conflict("the container is not running"));
        }
        let mut stdin = state.stdin.lock().await;
        if stdin.is_none() {
            *stdin = Some(self.open_stdin(id).await?);
        }
        let pipe = stdin.as_mut().ok_or_else(|| Error::conflict("no stdin"))?;
        pipe.write_all(data).await.map_err(|e| Error::conflict("the container closed its input").with_source(e))
    }

    async fn signal(&self, id: &str, signal: Signal) -> Result<()> {
        let r = TasksClient::new(self.client.channel.clone())
            .kill(self.client.req(KillRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
                signal: signal.number() as u32,
                all: signal == Signal::Kill,
            }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
            Err(s) => Err(status_err("signal task", s)),
        }
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus> {
        let mut rx = self.live_state(id).await?.exit.subscribe();
        let status = rx.wait_for(Option::is_some).await.map_err(|_| Error::unavailable("lost the task"))?;
        status.ok_or_else(|| Error::unavailable("lost the task"))
    }

    async fn stats(&self, id: &str) -> Result<ContainerStats> {
        let cg = self.cgroup(id);
        let memory_limit_bytes = cg.memory_limit().unwrap_or(0);
        let (Some(cpu_ns), Some(memory_bytes)) = (cg.cpu_usage_ns(), cg.memory_usage()) else {
            return Ok(ContainerStats { memory_limit_bytes, ..Default::default() });
        };
        let state = self.state(id);
        let now = Instant::now();
        let cpu_percent = state.map_or(0.0, |s| {
            let mut prev = lock(&s.cpu_prev);
            let pct = match *prev {
                Some((ns, at)) if cpu_ns >= ns => {
                    (cpu_ns - ns) as f64 / now.duration_since(at).as_nanos().max(1) as f64 * 100.0
                }
                _ => 0.0,
            };
            *prev = Some((cpu_ns, now));
            pct
        });
        // Traffic is only the container's own in bridge mode (with host networking it would be
        // the whole machine's): read its eth0 counters through the task's /proc.
        let (rx_bytes, tx_bytes) =
            if self.ports_file(id).exists() { self.net_counters(id).await.unwrap_or((0, 0)) } else { (0, 0) };
        Ok(ContainerStats { cpu_percent, memory_bytes, memory_limit_bytes, rx_bytes, tx_bytes })
    }

    async fn update_limits(&self, id: &str, limits: &Limits) -> Result<()> {
        self.cgroup(id).apply(limits)
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let c = &self.client;
        if self.task_running(id).await? == Some(true) {
            return Err(Error::conflict("the container is running"));
        }
        match TasksClient::new(c.channel.clone())
            .delete(c.req(DeleteTaskRequest { container_id: id.to_string() }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(status_err("delete task", s)),
        }
        let _ = SnapshotsClient::new(c.channel.clone())
            .remove(c.req(RemoveSnapshotRequest { snapshotter: self.config.snapshotter.clone(), key: id.to_string() }))
            .await;
        let ports: Vec<catalyst_core::model::Allocation> =
            std::fs::read(self.ports_file(id)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        cni::teardown(&self.config.cni, id, &ports).await;
        let _ = std::fs::remove_file(self.ports_file(id));
        let deleted =
            ContainersClient::new(c.channel.clone()).delete(c.req(DeleteContainerRequest { id: id.to_string() })).await;
        lock(&self.tasks).remove(id);
        let _ = std::fs::remove_file(self.fifo(id));
        let _ = std::fs::remove_file(self.log(id));
        match deleted {
            Ok(_) => Ok(()),
            Err(s) => Err(status_err("delete container", s)),
        }
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let containers = ContainersClient::new(self.client.channel.clone())
            .list(self.client.req(ListContainersRequest { filters: vec![format!("labels.\"{MANAGED_LABEL}\"==true")] }))
            .await
            .map_err(|s| status_err("list containers", s))?
            .into_inner()
            .containers;
        let mut out = Vec::with_capacity(containers.len());
        for container in containers {
            let running = self.task_running(&container.id).await?.unwrap_or(false);
            out.push(ContainerInfo { id: container.id, running });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
