//! Domain events published on the event bus for gateways, bindings and webhooks.

use crate::id::{BackupId, NodeId, ServerId, UserId};
use crate::lifecycle::ServerState;
use crate::model::{ServerLog, ServerMetrics, Timestamp};

/// Something observers may care about. Serialized as `{"type": …, …}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum DomainEvent {
    /// A server moved to a new lifecycle state.
    ServerStateUpdate {
        /// The server.
        server_id: ServerId,
        /// Previous state.
        from: ServerState,
        /// New state.
        to: ServerState,
        /// Why, when known (exit code, restart decision).
        reason: Option<String>,
        /// When the change happened (UTC): the node's clock for changes the node reports.
        at: Timestamp,
    },
    /// A console line.
    ServerLog(ServerLog),
    /// Output of the install script.
    InstallationProgress {
        /// The server.
        server_id: ServerId,
        /// One line of installer output.
        line: String,
    },
    /// A resource sample.
    ResourceStats(ServerMetrics),
    /// A server was deleted.
    ServerDeleted {
        /// The server.
        server_id: ServerId,
    },
    /// A user's access to a server changed or was removed: open sessions must re-check.
    AccessChanged {
        /// The server.
        server_id: ServerId,
        /// The user.
        user_id: UserId,
    },
    /// A user's logins were revoked (logout everywhere, password change, deletion, an API key
    /// revoked or deleted).
    UserRevoked {
        /// The user.
        user_id: UserId,
    },
    /// A backup or restore moved on.
    BackupProgress {
        /// The server.
        server_id: ServerId,
        /// The backup.
        backup_id: BackupId,
        /// Where it stands.
        phase: BackupPhase,
        /// Bytes of the server's files done.
        bytes: u64,
        /// Bytes in all (0 when unknown).
        total: u64,
        /// Why it failed.
        error: Option<String>,
    },
    /// A transfer to another node moved on.
    TransferProgress {
        /// The server.
        server_id: ServerId,
        /// Where it stands.
        phase: TransferPhase,
        /// Bytes copied (while copying).
        bytes: u64,
        /// Bytes to copy (while copying).
        total: u64,
        /// What happened.
        message: Option<String>,
    },
    /// A node came online or went offline.
    NodeStatus {
        /// The node.
        node_id: NodeId,
        /// Is it connected now?
        online: bool,
    },
}

/// Where a backup or a restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupPhase {
    /// Being written.
    Running,
    /// Stored and verified by its checksum.
    Completed,
    /// Not stored.
    Failed,
    /// Being restored.
    Restoring,
    /// The server's files were replaced.
    Restored,
    /// The restore failed; the server's files are as they were.
    RestoreFailed,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferPhase {
    /// Accepted; the source node is about to archive the files.
    Started,
    /// The source archives the files.
    Archiving,
    /// The archive and backups travel.
    Copying,
    /// The target unpacks them.
    Restoring,
    /// The server's node changes.
    Switching,
    /// Done: the server is on the target.
    Completed,
    /// Rolled back: the server is on its source.
    Failed,
}

impl DomainEvent {
    /// The server this event concerns, if any (for per-server subscriptions).
    pub fn server_id(&self) -> Option<ServerId> {
        match self {
            DomainEvent::ServerStateUpdate { server_id, .. }
            | DomainEvent::InstallationProgress { server_id, .. }
            | DomainEvent::ServerDeleted { server_id }
            | DomainEvent::AccessChanged { server_id, .. }
            | DomainEvent::BackupProgress { server_id, .. }
            | DomainEvent::TransferProgress { server_id, .. } => Some(*server_id),
            DomainEvent::ServerLog(l) => Some(l.server_id),
            DomainEvent::ResourceStats(m) => Some(m.server_id),
            DomainEvent::UserRevoked { .. } | DomainEvent::NodeStatus { .. } => None,
        }
    }
}
