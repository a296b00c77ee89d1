//! `NodeDaemon`: every server of one node, each with its lifecycle state machine.
//!
//! The daemon is the one executor of the lifecycle table: requests and runtime reports are
//! events; effects become runtime calls. Nothing long runs under a server's lock (installs,
//! process waits, grace timers and restart back-off are tasks), and every runtime call made
//! under the lock has a timeout, so a kill always gets through.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use catalyst_core::clock::Clock;
use catalyst_core::id::{NodeId, ServerId};
use catalyst_core::lifecycle::{Effect, Event, ServerState, apply};
use catalyst_core::model::{DonePattern, StopAction, Timestamp};
use catalyst_core::ports::{ConsoleLine, ContainerRuntime, ContainerSpec, Isolation, Mount, NetworkMode, Signal};
use catalyst_core::protocol::{NodeEvent, NodeRequest, NodeResponse, ServerSpec};
use catalyst_core::restart::{ExitInfo, RestartDecision};
use catalyst_core::{Error, ErrorKind, Result};
use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::BoxStream;
use tokio::sync::Mutex;

use super::console::{Console, ConsoleConfig, Pushed};

mod reporters;
mod run;
mod state_file;

/// Daemon settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Server directories live under `<data_dir>/servers/<id>`.
    pub data_dir: PathBuf,
    /// How long a stop may take before SIGKILL.
    pub stop_grace: Duration,
    /// Longest an install may run.
    pub install_timeout: Duration,
    /// Longest a single runtime call may take while a server is locked.
    pub call_timeout: Duration,
    /// Container network mode.
    pub network: NetworkMode,
    /// Console history and throttle.
    pub console: ConsoleConfig,
    /// The unprivileged `(uid, gid)` containers run as; their directory is owned by it. Install
    /// scripts run as root inside their container (with dropped capabilities).
    pub server_user: Option<(u32, u32)>,
    /// On a runtime that shares the host's files ([`Isolation::Uid`]), each server runs as its
    /// own uid from this range (gid = uid), installs included.
    pub server_uids: std::ops::Range<u32>,
    /// Run servers even when the runtime cannot confine them ([`Isolation::None`]): they can
    /// then read everything the node can. Only for servers the operator trusts.
    pub allow_unconfined: bool,
}

impl DaemonConfig {
    /// Defaults under `data_dir`: 30 s grace, 30 min install timeout, host networking.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            stop_grace: Duration::from_secs(30),
            install_timeout: Duration::from_secs(30 * 60),
            call_timeout: Duration::from_secs(10),
            network: NetworkMode::Host,
            console: ConsoleConfig::default(),
            server_user: Some((1000, 1000)),
            server_uids: super::server_users::DEFAULT_SERVER_UIDS,
            allow_unconfined: false,
        }
    }
}

/// Owns the servers of one node.
#[derive(Debug, Clone)]
pub struct NodeDaemon {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node_id: NodeId,
    runtime: Arc<dyn ContainerRuntime>,
    clock: Arc<dyn Clock>,
    config: DaemonConfig,
    servers: StdMutex<HashMap<ServerId, Arc<Slot>>>,
    usage: super::files::DiskUsage,
    subscribers: StdMutex<Vec<mpsc::UnboundedSender<(NodeId, NodeEvent)>>>,
    background: crate::background::Background,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub(super) id: ServerId,
    /// The uid of its own on a runtime that shares the host's files.
    uid: Option<u32>,
    console: Arc<Console>,
    /// Mirrors `state == Starting` so the output pump can skip the lock on most lines.
    starting: AtomicBool,
    /// Mirrors [`files_locked`] of the state, for SFTP's per-operation check.
    pub(super) files_locked: AtomicBool,
    /// The restore that `Effect::RunRestore` runs (set just before `BeginRestore`).
    pub(super) restore: StdMutex<Option<super::backup::RestoreJob>>,
    pub(super) machine: Mutex<Machine>,
}

#[derive(Debug)]
pub(super) struct Machine {
    spec: ServerSpec,
    pub(super) state: ServerState,
    /// Bumped on every start and install, so stale exits and timers are ignored.
    generation: u64,
    /// Restart times within the policy window.
    restarts: Vec<Timestamp>,
    /// Follow-up events to apply once nothing runs.
    pending: Vec<Event>,
    /// The server's console (also held by the slot).
    console: Arc<Console>,
    /// The last exit, for the restart decision.
    last_exit: Option<ExitInfo>,
}

/// What survives an agent restart, one JSON file per server.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Persisted {
    spec: ServerSpec,
    state: ServerState,
    restarts: Vec<Timestamp>,
    #[serde(default)]
    uid: Option<u32>,
}

/// States in which a restore, a transfer or a deletion owns the server's files.
pub(super) fn files_locked(state: ServerState) -> bool {
    matches!(state, ServerState::Restoring | ServerState::Transferring | ServerState::Deleting)
}

fn container_id(id: ServerId) -> String {
    id.to_string()
}

fn install_container_id(id: ServerId) -> String {
    format!("{id}-install")
}

impl NodeDaemon {
    /// A daemon for `node_id` running servers on `runtime`.
    pub fn new(
        node_id: NodeId,
        runtime: Arc<dyn ContainerRuntime>,
        clock: Arc<dyn Clock>,
        config: DaemonConfig,
    ) -> Self {
        if let Err(e) = super::server_users::prepare_node_dirs(&config.data_dir) {
            tracing::error!(dir = %config.data_dir.display(), error = %e, "cannot make the node's directories private");
        }
        Self {
            inner: Arc::new(Inner {
                node_id,
                runtime,
                clock,
                config,
                servers: StdMutex::new(HashMap::new()),
                usage: Default::default(),
                subscribers: StdMutex::new(Vec::new()),
                background: Default::default(),
            }),
        }
    }

    /// The node this daemon runs.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// Events from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<(NodeId, NodeEvent)> {
        let (tx, rx) = mpsc::unbounded();
        self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    /// Stop the reporters and every task watching a server, wait until they have ended, and
    /// end every event subscription. Servers keep running in their runtime (containerd keeps
    /// them; the next daemon's `recover` adopts them again).
    pub async fn shutdown(&self) {
        self.inner.background.shutdown().await;
        self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The owner of this daemon's tasks (for work that should end with the daemon).
    pub fn background(&self) -> &crate::background::Background {
        &self.inner.background
    }

    /// The state of one server as the node sees it.
    pub async fn state(&self, id: ServerId) -> Result<ServerState> {
        Ok(self.slot(id)?.machine.lock().await.state)
    }

    /// Handle one request from the control plane.
    pub async fn handle(&self, request: NodeRequest) -> Result<NodeResponse> {
        match request {
            NodeRequest::Configure { spec } => {
                self.configure(*spec).await?;
                Ok(NodeResponse::Ok)
            }
            NodeRequest::Install { server_id } => self.event(server_id, Event::Install).await,
            NodeRequest::Start { server_id } => self.event(server_id, Event::Start).await,
            NodeRequest::Stop { server_id } => self.event(server_id, Event::Stop).await,
            NodeRequest::Restart { server_id } => self.event(server_id, Event::Restart).await,
            NodeRequest::Kill { server_id } => self.event(server_id, Event::Kill).await,
            NodeRequest::Suspend { server_id } => self.event(server_id, Event::Suspend).await,
            NodeRequest::Unsuspend { server_id } => self.event(server_id, Event::Unsuspend).await,
            NodeRequest::Delete { server_id } => self.event(server_id, Event::Delete).await,
            NodeRequest::ResetCrashes { server_id } => {
                self.slot(server_id)?.machine.lock().await.restarts.clear();
                Ok(NodeResponse::Ok)
            }
            NodeRequest::Command { server_id, line } => {
                let slot = self.slot(server_id)?;
                let m = slot.machine.lock().await;
                if !matches!(m.state, ServerState::Starting | ServerState::Running) {
                    return Err(Error::new(
                        ErrorKind::InvalidTransition,
                        format!("cannot send a command to a server that is {}", m.state),
                    ));
                }
                let mut data = line.into_bytes();
                data.push(b'\n');
                self.call(self.inner.runtime.write_stdin(&container_id(server_id), &data)).await?;
                Ok(NodeResponse::Ok)
            }
            NodeRequest::Backup { server_id, backup_id, storage } => {
                self.start_backup(server_id, backup_id, storage).map(|()| NodeResponse::Ok)
            }
            NodeRequest::Restore { server_id, backup_id, storage, checksum } => {
                self.start_restore(server_id, backup_id, storage, checksum).await
            }
            NodeRequest::BeginTransfer { server_id } => self.event(server_id, Event::BeginTransfer).await,
            NodeRequest::EndTransfer { server_id } => self.event(server_id, Event::TransferFinished).await,
            NodeRequest::ReadArchive { server_id, directory, archive_id, offset, length } => {
                let (data, size) = self.read_archive(server_id, &directory, archive_id, offset, length).await?;
                Ok(NodeResponse::Files { reply: catalyst_core::model::FileReply::Chunk { data, size } })
            }
            NodeRequest::WriteArchive { server_id, directory, archive_id, offset, data } => {
                self.write_archive(server_id, &directory, archive_id, offset, data).await.map(|()| NodeResponse::Ok)
            }
            NodeRequest::CommitArchive { server_id, directory, archive_id, checksum } => {
                self.commit_archive(server_id, &directory, archive_id, &checksum).await.map(|()| NodeResponse::Ok)
            }
            NodeRequest::DeleteBackup { server_id, backup_id, storage } => {
                self.delete_backup(server_id, backup_id, &storage).await.map(|()| NodeResponse::Ok)
            }
            NodeRequest::Files { server_id, op } => Ok(NodeResponse::Files { reply: self.files(server_id, op).await? }),
            NodeRequest::Inventory => {
                let slots: Vec<Arc<Slot>> =
                    self.inner.servers.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
                let mut servers = Vec::with_capacity(slots.len());
                for slot in slots {
                    servers.push((slot.id, slot.machine.lock().await.state));
                }
                servers.sort_by_key(|(id, _)| *id);
                Ok(NodeResponse::Inventory { servers })
            }
        }
    }

    async fn configure(&self, spec: ServerSpec) -> Result<()> {
        let slot = self.insert_slot(spec, ServerState::Stopped, Vec::new(), None).await?;
        self.persist(&slot, &*slot.machine.lock().await);
        Ok(())
    }

    /// Add a server, or replace the definition of a known one (keeping its state). A new
    /// server on a runtime that shares the host's files gets a uid of its own (`uid` when
    /// recovered).
    async fn insert_slot(
        &self,
        spec: ServerSpec,
        state: ServerState,
        restarts: Vec<Timestamp>,
        uid: Option<u32>,
    ) -> Result<Arc<Slot>> {
        let existing = self.inner.servers.lock().unwrap_or_else(|p| p.into_inner()).get(&spec.server_id).cloned();
        if let Some(slot) = existing {
            slot.machine.lock().await.spec = spec;
            return Ok(slot);
        }
        // Sequence numbers start at the current time in microseconds: they keep increasing across
        // agent restarts without any bookkeeping.
        let first_seq = self.inner.clock.now().timestamp_micros();
        let console = Arc::new(Console::new(self.inner.config.console, first_seq));
        let mut servers = self.inner.servers.lock().unwrap_or_else(|p| p.into_inner());
        let uid = match (self.inner.runtime.isolation(), uid) {
            (Isolation::Uid, Some(uid)) => Some(uid),
            (Isolation::Uid, None) => {
                let taken = servers.values().filter_map(|s| s.uid).collect();
                Some(super::server_users::allocate(&self.inner.config.server_uids, &taken)?)
            }
            _ => None,
        };
        let slot = Arc::new(Slot {
            id: spec.server_id,
            uid,
            console: console.clone(),
            starting: AtomicBool::new(false),
            files_locked: AtomicBool::new(false),
            restore: StdMutex::new(None),
            machine: Mutex::new(Machine {
                spec,
                state,
                generation: 0,
                restarts,
                pending: Vec::new(),
                console,
                last_exit: None,
            }),
        });
        let id = slot.id;
        Ok(servers.entry(id).or_insert(slot).clone())
    }

    fn slot(&self, id: ServerId) -> Result<Arc<Slot>> {
        self.inner
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("server"))
    }

    pub(super) fn emit(&self, event: NodeEvent) {
        let mut subs = self.inner.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| s.unbounded_send((self.inner.node_id, event.clone())).is_ok());
    }

    pub(super) fn system_line(&self, m: &mut Machine, line: String) {
        let e = m.console.system(line, self.inner.clock.now());
        self.emit_line(m.spec.server_id, e);
    }

    fn emit_line(&self, server_id: ServerId, e: super::console::ConsoleEntry) {
        self.emit(NodeEvent::Log { server_id, seq: e.seq, stream: e.stream, line: e.line.to_string(), at: e.at });
    }

    async fn call<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.inner.config.call_timeout, fut)
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout, "the container runtime did not answer in time"))?
    }

    pub(super) async fn event(&self, id: ServerId, event: Event) -> Result<NodeResponse> {
        let slot = self.slot(id)?;
        let mut m = slot.machine.lock().await;
        self.step(&slot, &mut m, event, None).await?;
        Ok(NodeResponse::State { state: m.state })
    }

    /// Apply one event and every follow-up it makes due. Holds the server's lock.
    ///
    /// Boxed (and `Send`) because effects spawn tasks that step again.
    pub(super) fn step<'a>(
        &'a self,
        slot: &'a Arc<Slot>,
        m: &'a mut Machine,
        event: Event,
        reason: Option<String>,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut queue = vec![(event, reason)];
            let mut first = true;
            while let Some((event, reason)) = queue.pop() {
                let t = match apply(m.state, event) {
                    Ok(t) => t,
                    Err(e) if first => return Err(e),
                    Err(e) => {
                        self.system_line(m, format!("follow-up {} skipped: {}", event.name(), e.message()));
                        continue;
                    }
                };
                first = false;
                let from = m.state;
                m.state = t.next;
                slot.starting.store(t.next == ServerState::Starting, Ordering::Release);
                slot.files_locked.store(files_locked(t.next), Ordering::Release);
                if from != t.next {
                    self.emit(NodeEvent::StateChanged {
                        server_id: slot.id,
                        from,
                        to: t.next,
                        reason,
                        at: self.inner.clock.now(),
                    });
                }
                for effect in t.effects {
                    self.run_effect(slot, m, effect).await;
                }
                if !m.state.has_process() && m.state != ServerState::Installing && queue.is_empty() {
                    queue.extend(std::mem::take(&mut m.pending).into_iter().rev().map(|e| (e, None)));
                }
            }
            if m.state != ServerState::Deleting {
                self.persist(slot, m);
            }
            Ok(())
        })
    }

    async fn run_effect(&self, slot: &Arc<Slot>, m: &mut Machine, effect: Effect) {
        let runtime = &self.inner.runtime;
        match effect {
            Effect::RunInstall => {
                m.generation += 1;
                self.inner.background.spawn(self.clone().install(slot.clone(), m.spec.clone(), m.generation));
            }
            Effect::AbortInstall => {
                if let Err(e) = self.call(runtime.signal(&install_container_id(slot.id), Signal::Kill)).await {
                    self.system_line(m, format!("abort install: {}", e.message()));
                }
            }
            Effect::StartProcess => {
                m.generation += 1;
                m.last_exit = None;
                self.inner.background.spawn(self.clone().start_process(slot.clone(), m.spec.clone(), m.generation));
            }
            Effect::StopProcess => {
                let id = container_id(slot.id);
                let asked = match &m.spec.stop {
                    StopAction::Command(cmd) => {
                        self.call(runtime.write_stdin(&id, format!("{cmd}\n").as_bytes())).await
                    }
                    StopAction::Signal(name) => match Signal::parse(name) {
                        Ok(sig) => self.call(runtime.signal(&id, sig)).await,
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = asked {
                    self.system_line(m, format!("stop request failed ({}); killing", e.message()));
                    let _ = self.call(runtime.signal(&id, Signal::Kill)).await;
                }
                self.inner.background.spawn(self.clone().kill_after_grace(slot.clone(), m.generation));
            }
            Effect::KillProcess => {
                if let Err(e) = self.call(runtime.signal(&container_id(slot.id), Signal::Kill)).await {
                    self.system_line(m, format!("kill: {}", e.message()));
                }
            }
            Effect::RecordCrash => {
                let exit = m.last_exit.unwrap_or(ExitInfo { clean: false, oom: false });
                self.emit(NodeEvent::Crashed {
                    server_id: slot.id,
                    at: self.inner.clock.now(),
                    code: None,
                    oom: exit.oom,
                });
            }
            Effect::ApplyRestartPolicy { clean, oom } => {
                let now = self.inner.clock.now();
                let policy = m.spec.restart_policy;
                policy.prune(&mut m.restarts, now);
                match policy.decide(ExitInfo { clean, oom }, &m.restarts, now) {
                    RestartDecision::Restart { delay, attempt } => {
                        m.restarts.push(now);
                        self.system_line(m, format!("restarting in {} ms (attempt {attempt})", delay.as_millis()));
                        self.inner.background.spawn(self.clone().restart_after(slot.clone(), m.generation, delay));
                    }
                    RestartDecision::GiveUp { reason } => self.system_line(m, format!("not restarting: {reason}")),
                    RestartDecision::Stay => {}
                }
            }
            Effect::RunTransfer => {
                // The control plane copies the files; the server stays locked until it is done.
                self.system_line(m, "transfer started: the server is locked until it ends".into());
            }
            Effect::RunRestore => {
                let job = slot.restore.lock().unwrap_or_else(|p| p.into_inner()).take();
                match job {
                    Some(job) => {
                        self.system_line(m, format!("restoring backup {}", job.backup_id));
                        self.inner.background.spawn(self.clone().run_restore(slot.clone(), job));
                    }
                    None => m.pending.push(Event::RestoreFinished),
                }
            }
            Effect::Destroy => {
                for id in [container_id(slot.id), install_container_id(slot.id)] {
                    match self.call(runtime.remove(&id)).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => self.system_line(m, format!("remove {id}: {}", e.message())),
                    }
                }
                self.inner.servers.lock().unwrap_or_else(|p| p.into_inner()).remove(&slot.id);
                let _ = std::fs::remove_file(self.state_file(slot.id));
                // The files go with the server (backups are kept until deleted on their own).
                match tokio::fs::remove_dir_all(self.server_dir(slot.id)).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(server = %slot.id, error = %e, "could not remove the server's files"),
                }
                self.inner.usage.forget(slot.id);
            }
            Effect::FollowUp(f) => m.pending.push(f.event()),
        }
    }

    /// Refuse file access while a restore or a transfer owns the server's files.
    pub(super) async fn files_open(&self, id: ServerId) -> Result<()> {
        let state = self.slot(id)?.machine.lock().await.state;
        if files_locked(state) {
            return Err(Error::conflict(format!("the server's files are locked while it is {state}")));
        }
        Ok(())
    }

    /// A known server's limits.
    pub(super) async fn limits_of(&self, id: ServerId) -> Result<catalyst_core::model::Limits> {
        Ok(self.slot(id)?.machine.lock().await.spec.limits)
    }

    pub(super) fn slot_exists(&self, id: ServerId) -> Result<Arc<Slot>> {
        self.slot(id)
    }

    pub(super) fn data_dir(&self) -> &std::path::Path {
        &self.inner.config.data_dir
    }

    /// The last measured size of a server's directory (0 when never measured).
    pub(super) fn usage_hint(&self, id: ServerId) -> u64 {
        self.inner.usage.peek(id)
    }

    /// Whom a server's files belong to and its processes run as.
    pub(super) fn server_user(&self, id: ServerId) -> Option<(u32, u32)> {
        match self.inner.runtime.isolation() {
            Isolation::Namespaces => self.inner.config.server_user,
            Isolation::Uid => self.slot(id).ok().and_then(|s| s.uid).map(|uid| (uid, uid)),
            Isolation::None => None,
        }
    }

    pub(super) fn usage(&self) -> &super::files::DiskUsage {
        &self.inner.usage
    }

    pub(super) fn server_dir(&self, id: ServerId) -> PathBuf {
        self.inner.config.data_dir.join("servers").join(id.to_string())
    }
}
