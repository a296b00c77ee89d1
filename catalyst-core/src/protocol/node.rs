//! The control plane ↔ node protocol: serde types only, carried by any [`crate::ports::NodeLink`].

use std::collections::BTreeMap;

use crate::id::{BackupId, NodeId, ServerId, UserId};
use crate::lifecycle::ServerState;
use crate::model::{
    Allocation, BackupStorage, ConfigFileEdit, DonePattern, FileOp, FileReply, InstallScript, Limits, LogStream,
    ServerMetrics, StartupMode, StopAction, Timestamp,
};
use crate::restart::RestartPolicy;

/// Version of this protocol, exchanged in the handshake.
pub const PROTOCOL_VERSION: u32 = 1;

/// Everything a node needs to run one server, rendered by the control plane.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerSpec {
    /// The server.
    pub server_id: ServerId,
    /// Image to run.
    pub image: String,
    /// Rendered startup command (run by `/bin/sh -c`); empty in entrypoint mode.
    pub startup: String,
    /// Shell, or the image's own entrypoint (which reads `STARTUP` from `env`).
    #[serde(default)]
    pub startup_mode: StartupMode,
    /// Rendered environment.
    pub env: BTreeMap<String, String>,
    /// Resource limits the node enforces (memory, CPU, disk, processes).
    pub limits: Limits,
    /// Network endpoints.
    pub allocations: Vec<Allocation>,
    /// How to ask it to stop.
    pub stop: StopAction,
    /// "Started" markers.
    pub done_patterns: Vec<DonePattern>,
    /// Install step, if the template has one.
    pub install: Option<InstallScript>,
    /// Crash policy, applied on the node.
    pub restart_policy: RestartPolicy,
    /// Config edits with their values rendered, applied before every start.
    #[serde(default)]
    pub config_files: Vec<ConfigFileEdit>,
    /// Globs the file manager and SFTP refuse.
    #[serde(default)]
    pub file_denylist: Vec<String>,
}

/// A request from the control plane to a node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NodeRequest {
    /// Store or replace a server's definition (idempotent).
    Configure {
        /// The definition (boxed: it dwarfs every other request).
        spec: Box<ServerSpec>,
    },
    /// Run the install script.
    Install {
        /// The server.
        server_id: ServerId,
    },
    /// Start the process.
    Start {
        /// The server.
        server_id: ServerId,
    },
    /// Stop gracefully.
    Stop {
        /// The server.
        server_id: ServerId,
    },
    /// Stop then start.
    Restart {
        /// The server.
        server_id: ServerId,
    },
    /// SIGKILL (or abort the installer).
    Kill {
        /// The server.
        server_id: ServerId,
    },
    /// Write a line to the console.
    Command {
        /// The server.
        server_id: ServerId,
        /// The line, without newline.
        line: String,
    },
    /// Lock the server (stopping it first if it runs).
    Suspend {
        /// The server.
        server_id: ServerId,
    },
    /// Unlock the server.
    Unsuspend {
        /// The server.
        server_id: ServerId,
    },
    /// Forget the crash history (after an operator fixed the cause).
    ResetCrashes {
        /// The server.
        server_id: ServerId,
    },
    /// Remove container and files.
    Delete {
        /// The server.
        server_id: ServerId,
    },
    /// What the node has (sent by the control plane after reconnects).
    Inventory,
    /// Archive the server's directory into backup storage; progress and the outcome follow as
    /// events.
    Backup {
        /// The server.
        server_id: ServerId,
        /// The backup's id (names the stored object).
        backup_id: BackupId,
        /// Where to store it.
        storage: BackupStorage,
    },
    /// Replace the (stopped) server's directory with a backup once its checksum matched; the
    /// outcome follows as an event.
    Restore {
        /// The server.
        server_id: ServerId,
        /// The backup.
        backup_id: BackupId,
        /// Where it is stored.
        storage: BackupStorage,
        /// Its SHA-256, hex.
        checksum: String,
    },
    /// Lock the (stopped) server for a transfer away from this node.
    BeginTransfer {
        /// The server.
        server_id: ServerId,
    },
    /// Unlock it (the transfer failed, or it is about to be deleted here).
    EndTransfer {
        /// The server.
        server_id: ServerId,
    },
    /// Part of an archive in node-local backup storage (transfers relay archives this way).
    ReadArchive {
        /// The server.
        server_id: ServerId,
        /// Local storage directory (empty: the default).
        directory: String,
        /// The archive (a backup's id).
        archive_id: BackupId,
        /// Byte offset to read from.
        offset: u64,
        /// At most this many bytes.
        length: u32,
    },
    /// Append to an archive being received (`offset` must be its current size).
    WriteArchive {
        /// The server.
        server_id: ServerId,
        /// Local storage directory (empty: the default).
        directory: String,
        /// The archive.
        archive_id: BackupId,
        /// Byte offset of `data`; must equal the bytes received so far.
        offset: u64,
        /// The next bytes of the archive (base64 on the wire).
        #[serde(with = "crate::model::base64_bytes")]
        data: Vec<u8>,
    },
    /// Check a received archive's SHA-256 and put it in place.
    CommitArchive {
        /// The server.
        server_id: ServerId,
        /// Local storage directory (empty: the default).
        directory: String,
        /// The archive.
        archive_id: BackupId,
        /// Expected SHA-256, hex.
        checksum: String,
    },
    /// Delete a stored backup.
    DeleteBackup {
        /// The server.
        server_id: ServerId,
        /// The backup.
        backup_id: BackupId,
        /// Where it is stored.
        storage: BackupStorage,
    },
    /// A file operation in the server's directory.
    Files {
        /// The server.
        server_id: ServerId,
        /// The operation.
        op: FileOp,
    },
}

/// A node's answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NodeResponse {
    /// Done (or accepted; progress follows as events).
    Ok,
    /// Accepted; the server's state on the node right after the request.
    State {
        /// The state.
        state: ServerState,
    },
    /// The node's servers and their states.
    Inventory {
        /// Server states as the node sees them.
        servers: Vec<(ServerId, ServerState)>,
    },
    /// The result of a file operation.
    Files {
        /// The result.
        reply: FileReply,
    },
}

/// Something a node reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NodeEvent {
    /// A server changed state on the node.
    StateChanged {
        /// The server.
        server_id: ServerId,
        /// Previous state.
        from: ServerState,
        /// New state.
        to: ServerState,
        /// Why (exit code, restart decision).
        reason: Option<String>,
        /// When the change happened, on the node's clock (UTC).
        at: Timestamp,
    },
    /// Console output.
    Log {
        /// The server.
        server_id: ServerId,
        /// Per-server sequence.
        seq: i64,
        /// Source stream: stdout, stderr or Catalyst's own notes.
        stream: LogStream,
        /// The text, without the trailing newline.
        line: String,
        /// When the node saw the line (UTC).
        at: Timestamp,
    },
    /// Installer output.
    InstallOutput {
        /// The server.
        server_id: ServerId,
        /// One line of installer output, without the trailing newline.
        line: String,
    },
    /// A resource sample.
    Stats(ServerMetrics),
    /// A crash was recorded (the control plane keeps the history).
    Crashed {
        /// The server.
        server_id: ServerId,
        /// When the process exited, on the node's clock (UTC).
        at: Timestamp,
        /// Exit code.
        code: Option<i32>,
        /// OOM kill.
        oom: bool,
    },
    /// A backup is being written.
    BackupProgress {
        /// The server.
        server_id: ServerId,
        /// The backup.
        backup_id: BackupId,
        /// Bytes of the server's files read so far.
        bytes: u64,
        /// Bytes of the server's files in all.
        total: u64,
    },
    /// A backup finished.
    BackupDone {
        /// The server.
        server_id: ServerId,
        /// The backup.
        backup_id: BackupId,
        /// The stored archive, or why there is none.
        result: Result<StoredArchive, WireError>,
    },
    /// A restore finished.
    RestoreDone {
        /// The server.
        server_id: ServerId,
        /// The backup.
        backup_id: BackupId,
        /// Done, or why the server's files were left as they were.
        result: Result<(), WireError>,
    },
    /// Someone changed a server's files outside the control plane (SFTP).
    FileActivity {
        /// The server.
        server_id: ServerId,
        /// Who (from their credential).
        user_id: Option<UserId>,
        /// Audit action, e.g. `file.write`.
        action: String,
        /// The path (or `from → to`).
        path: String,
        /// Bytes written.
        bytes: u64,
    },
    /// Periodic node health.
    Health {
        /// The node.
        node_id: NodeId,
        /// CPU percent of the whole machine.
        cpu_percent: f64,
        /// Memory used.
        memory_used_bytes: u64,
        /// Memory total.
        memory_total_bytes: u64,
        /// Disk used.
        disk_used_bytes: u64,
        /// Disk total.
        disk_total_bytes: u64,
    },
}

/// What a backup stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredArchive {
    /// Size of the stored object.
    pub size_bytes: u64,
    /// Its SHA-256, hex.
    pub checksum: String,
}

/// An error carried over the wire.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WireError {
    /// Stable code.
    pub code: crate::ErrorKind,
    /// Human message.
    pub message: String,
}

impl From<&crate::Error> for WireError {
    fn from(e: &crate::Error) -> Self {
        Self { code: e.kind(), message: e.message().to_string() }
    }
}

impl From<WireError> for crate::Error {
    fn from(e: WireError) -> Self {
        crate::Error::new(e.code, e.message)
    }
}

/// A frame from an agent to the control plane.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum AgentFrame {
    /// First frame: who this is, and what it runs (the control plane reconciles).
    Hello {
        /// [`PROTOCOL_VERSION`] of the agent.
        protocol: u32,
        /// The node.
        node_id: NodeId,
        /// The credential from enrollment.
        credential: String,
        /// Servers and their states on the node.
        inventory: Vec<(ServerId, ServerState)>,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u64,
        /// Success or a typed error.
        result: Result<NodeResponse, WireError>,
    },
    /// Something happened on the node.
    Event {
        /// The event.
        event: NodeEvent,
    },
}

/// A frame from the control plane to an agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ControlFrame {
    /// The hello was accepted.
    Welcome {
        /// The control plane's [`PROTOCOL_VERSION`].
        protocol: u32,
    },
    /// Do something and answer with the same id.
    Request {
        /// Correlation id.
        id: u64,
        /// The request.
        request: NodeRequest,
    },
    /// The connection is refused or ends; the socket closes after this frame.
    Error {
        /// Why the connection is refused or ends: a stable code and a message.
        error: WireError,
    },
}
