use std::collections::BTreeMap;

use crate::id::{NodeId, ServerId, TemplateId, UserId};
use crate::lifecycle::ServerState;
use crate::model::Timestamp;
use crate::permission::Permission;
use crate::restart::RestartPolicy;

/// A game server (or any long-running app) placed on a node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Server {
    /// Unique id (UUID), assigned by Catalyst when the server is created.
    pub id: ServerId,
    /// Stable integer id, assigned by the store on insert (the Pterodactyl API's `id`).
    #[serde(default)]
    pub number: u64,
    /// The billing system's id for this service: unique, matched exactly.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Display name, unique per owner.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The customer who owns it.
    pub owner_id: UserId,
    /// Where it runs.
    pub node_id: NodeId,
    /// What it runs.
    pub template_id: TemplateId,
    /// Values of the template's variables (validated).
    pub variables: BTreeMap<String, String>,
    /// Resource limits.
    pub limits: Limits,
    /// Network endpoints; exactly one is primary.
    pub allocations: Vec<Allocation>,
    /// What happens when it exits unasked.
    pub restart_policy: RestartPolicy,
    /// The image it runs, when it chose one of the template's others.
    #[serde(default)]
    pub image: Option<String>,
    /// The template's startup command it runs, by name, when not the default.
    #[serde(default)]
    pub startup_command: Option<String>,
    /// Lifecycle state.
    pub state: ServerState,
    /// Crashes since the last reset.
    pub crash_count: u32,
    /// Times of recent crashes, newest last, for the restart window.
    #[schema(value_type = Vec<String>, format = DateTime)]
    pub crash_history: Vec<Timestamp>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

impl Server {
    /// Suspension is a lifecycle state, not a side flag.
    pub fn suspended(&self) -> bool {
        self.state == ServerState::Suspended
    }

    /// The primary allocation.
    pub fn primary_allocation(&self) -> Option<&Allocation> {
        self.allocations.iter().find(|a| a.primary)
    }
}

/// Resource limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory in MiB (0 = unlimited, else at least 16).
    #[schema(maximum = 1048576)]
    pub memory_mb: u64,
    /// Swap in MiB on top of memory (0 = none).
    #[serde(default)]
    #[schema(maximum = 1048576)]
    pub swap_mb: u64,
    /// CPU in percent of one core (200 = two cores; 0 = unlimited).
    #[serde(default)]
    #[schema(maximum = 102400)]
    pub cpu_percent: u32,
    /// Disk in MiB (0 = unlimited, else at least 16).
    #[schema(maximum = 1073741824)]
    pub disk_mb: u64,
    /// Block-IO weight 10..=1000.
    #[serde(default = "default_io_weight")]
    #[schema(minimum = 10, maximum = 1000)]
    pub io_weight: u16,
    /// Maximum number of processes.
    #[serde(default = "default_pids")]
    #[schema(minimum = 16, maximum = 65536)]
    pub pids: u32,
    /// Backups kept at once; a new one is refused at the limit (default 5).
    #[serde(default = "default_backups")]
    pub backups: u32,
    /// MiB all its backups may take together (default: its disk limit).
    #[serde(default)]
    pub backup_mb: Option<u64>,
    /// Allocations it may hold, the primary included (default and most: 32).
    #[serde(default = "default_allocations")]
    #[schema(minimum = 1, maximum = 32)]
    pub allocations: u32,
}

/// The most allocations one server may hold.
pub const MAX_ALLOCATIONS: u32 = 32;

fn default_allocations() -> u32 {
    MAX_ALLOCATIONS
}

fn default_backups() -> u32 {
    5
}

fn default_io_weight() -> u16 {
    500
}

fn default_pids() -> u32 {
    512
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 1024,
            swap_mb: 0,
            cpu_percent: 100,
            disk_mb: 5120,
            io_weight: 500,
            pids: 512,
            backups: default_backups(),
            backup_mb: None,
            allocations: MAX_ALLOCATIONS,
        }
    }
}

/// An `ip:port` the server listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// IP address, `0.0.0.0` for all.
    pub ip: String,
    /// TCP and UDP port.
    #[schema(minimum = 1, maximum = 65535)]
    pub port: u16,
    /// The address players connect to.
    #[serde(default)]
    pub primary: bool,
}

/// A user's permissions on one server that they do not own (a subuser).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ServerAccess {
    /// The server.
    pub server_id: ServerId,
    /// The subuser.
    pub user_id: UserId,
    /// Server-scoped permissions granted.
    pub permissions: Vec<Permission>,
    /// When granted.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}
