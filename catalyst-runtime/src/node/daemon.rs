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
use catalyst_core::id::{BackupId, NodeId, ServerId};
use catalyst_core::lifecycle::{Effect, Event, ServerState, apply};
use catalyst_core::model::{BackupStorage, DonePattern, FileOp, FileReply, StopAction, Timestamp};
use catalyst_core::ports::{ConsoleLine, ContainerRuntime, ContainerSpec, Isolation, Mount, NetworkMode, Signal};
use catalyst_core::protocol::{NodeEvent, NodeRequest, NodeResponse, ServerSpec};
use catalyst_core::restart::{ExitInfo, RestartDecision};
use catalyst_core::{Error, ErrorKind, Result};
use futures::StreamExt;
use futures::channel::mpsc;
use futures::stream::BoxStream;
use tokio::sync::Mutex;

use super::console::{Console, ConsoleConfig, Pushed};
use super::data::backup::RestoreJob;
use super::data::disk_usage::DiskUsage;
use super::data::{ServerFiles, server_dir};
use super::events::EventSink;
use crate::sync::lock;
use machine::{Machine, Slot, container_id, files_locked, install_container_id};
use state_file::StateFile;

mod config_files;
mod data_plane;
mod machine;
mod recover;
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
    usage: Arc<DiskUsage>,
    events: EventSink,
    background: crate::background::Background,
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
                events: EventSink::new(node_id),
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
        self.inner.events.subscribe()
    }

    /// Stop the reporters and every task watching a server, wait until they have ended, and
    /// end every event subscription. Servers keep running in their runtime (containerd keeps
    /// them; the next daemon's `recover` adopts them again).
    pub async fn shutdown(&self) {
        self.inner.background.shutdown().await;
        self.inner.events.close();
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
                let (data, size) = self.archives().read(server_id, &directory, archive_id, offset, length).await?;
                Ok(NodeResponse::Files { reply: catalyst_core::model::FileReply::Chunk { data, size } })
            }
            NodeRequest::WriteArchive { server_id, directory, archive_id, offset, data } => {
                self.archives().write(server_id, &directory, archive_id, offset, data).await.map(|()| NodeResponse::Ok)
            }
            NodeRequest::CommitArchive { server_id, directory, archive_id, checksum } => {
                self.archives().commit(server_id, &directory, archive_id, &checksum).await.map(|()| NodeResponse::Ok)
            }
            NodeRequest::DeleteBackup { server_id, backup_id, storage } => {
                self.backups().delete(server_id, backup_id, &storage).await.map(|()| NodeResponse::Ok)
            }
            NodeRequest::Files { server_id, op } => Ok(NodeResponse::Files { reply: self.files(server_id, op).await? }),
            NodeRequest::Inventory => {
                let slots: Vec<Arc<Slot>> = lock(&self.inner.servers).values().cloned().collect();
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
        let m = slot.machine.lock().await;
        self.persist(&slot, &m).await;
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
        let existing = lock(&self.inner.servers).get(&spec.server_id).cloned();
        if let Some(slot) = existing {
            slot.machine.lock().await.spec = spec;
            return Ok(slot);
        }
        // Sequence numbers start at the current time in microseconds: they keep increasing across
        // agent restarts without any bookkeeping.
        let first_seq = self.inner.clock.now().timestamp_micros();
        let console = Arc::new(Console::new(self.inner.config.console, first_seq));
        let mut servers = lock(&self.inner.servers);
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
            files_locked: Arc::new(AtomicBool::new(false)),
            restore: StdMutex::new(None),
            state_file: StateFile::new(self.state_file(spec.server_id)),
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
        lock(&self.inner.servers).get(&id).cloned().ok_or_else(|| Error::not_found("server"))
    }

    fn emit(&self, event: NodeEvent) {
        self.inner.events.emit(event);
    }

    fn system_line(&self, m: &mut Machine, line: String) {
        let e = m.console.system(line, self.inner.clock.now());
        self.emit_line(m.spec.server_id, e);
    }

    fn emit_line(&self, server_id: ServerId, e: super::console::ConsoleEntry) {
        self.emit(NodeEvent::Log { server_id, seq: e.seq, stream: e.stream, line: e.line.to_string(), at: e.at });
    }

    async fn call<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.inner.config.call_timeout, fut)
            .await
            .map_err(|_| Error::timeout("the container runtime did not answer in time"))?
    }

    async fn event(&self, id: ServerId, event: Event) -> Result<NodeResponse> {
        let slot = self.slot(id)?;
        let mut m = slot.machine.lock().await;
        self.step(&slot, &mut m, event, None).await?;
        Ok(NodeResponse::State { state: m.state })
    }

    /// Whom a server's files belong to and its processes run as.
    fn server_user(&self, id: ServerId) -> Option<(u32, u32)> {
        match self.inner.runtime.isolation() {
            Isolation::Namespaces => self.inner.config.server_user,
            Isolation::Uid => self.slot(id).ok().and_then(|s| s.uid).map(|uid| (uid, uid)),
            Isolation::None => None,
        }
    }

    fn server_dir(&self, id: ServerId) -> PathBuf {
        server_dir(&self.inner.config.data_dir, id)
    }
}
