//! Inputs and outputs of the facade: plain serde types, validated by the services.

use std::collections::BTreeMap;
use std::fmt;

use catalyst_core::id::{AlertId, LocationId, NodeId, RoleId, ServerId, TemplateId, UserId};
use catalyst_core::model::{
    AlertCondition, Allocation, ApiKey, CatchUp, Deploy, Limits, MetricsRollup, Node, ServerMetrics, Severity,
    TaskAction, Timestamp, User, WebhookTarget,
};

pub use catalyst_core::model::NewTemplate;
use catalyst_core::permission::Permission;
use catalyst_core::restart::RestartPolicy;

/// Self-service registration.
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// E-mail address (the login).
    #[schema(max_length = 254, pattern = r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$")]
    pub email: String,
    /// Display name.
    #[schema(min_length = 3, max_length = 191, pattern = r"^[A-Za-z0-9_.@+-]{3,191}$")]
    pub username: String,
    /// Password, 8 characters or more.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

impl fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterInput")
            .field("email", &self.email)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A new account made by an operator or a billing system: registration's fields and the
/// billing system's.
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// E-mail address (the login).
    #[schema(max_length = 254, pattern = r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$")]
    pub email: String,
    /// Display name.
    #[schema(min_length = 3, max_length = 191, pattern = r"^[A-Za-z0-9_.@+-]{3,191}$")]
    pub username: String,
    /// Password, 8 characters or more.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// The billing system's id for this customer: unique, looked up exactly.
    #[serde(default)]
    #[schema(max_length = 191)]
    pub external_id: Option<String>,
    /// Given name.
    #[serde(default)]
    #[schema(max_length = 191)]
    pub first_name: String,
    /// Family name.
    #[serde(default)]
    #[schema(max_length = 191)]
    pub last_name: String,
}

impl From<RegisterInput> for NewUser {
    fn from(r: RegisterInput) -> Self {
        Self {
            email: r.email,
            username: r.username,
            password: r.password,
            external_id: None,
            first_name: String::new(),
            last_name: String::new(),
        }
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("external_id", &self.external_id)
            .finish_non_exhaustive()
    }
}

/// A login attempt.
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// E-mail address.
    pub email: String,
    /// The account's password, in clear text.
    pub password: String,
}

impl fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginInput").field("email", &self.email).finish_non_exhaustive()
    }
}

/// Tokens handed out at login and refresh.
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LoginOutput {
    /// Bearer token for the API (short-lived JWT).
    pub access_token: String,
    /// Opaque token to get a new access token; rotates on each use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The user.
    pub user: User,
}

impl fmt::Debug for LoginOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginOutput")
            .field("user", &self.user)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The caller and what they hold.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Me {
    /// The user.
    pub user: User,
    /// Global permissions (after any API key ceiling).
    pub permissions: Vec<Permission>,
}

/// Change a user (operators).
#[derive(Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New e-mail.
    #[serde(default)]
    #[schema(max_length = 254, pattern = r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s]*[^@\s.]$")]
    pub email: Option<String>,
    /// New display name.
    #[serde(default)]
    #[schema(min_length = 3, max_length = 191, pattern = r"^[A-Za-z0-9_.@+-]{3,191}$")]
    pub username: Option<String>,
    /// New role list.
    #[serde(default)]
    pub roles: Option<Vec<RoleId>>,
    /// New billing id (`""` clears it).
    #[serde(default)]
    #[schema(max_length = 191)]
    pub external_id: Option<String>,
    /// New given name.
    #[serde(default)]
    #[schema(max_length = 191)]
    pub first_name: Option<String>,
    /// New family name.
    #[serde(default)]
    #[schema(max_length = 191)]
    pub last_name: Option<String>,
    /// New password (8 characters or more); the user's sessions end.
    #[serde(default)]
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

impl fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPatch")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("external_id", &self.external_id)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// How many of the requested ports were new to the pool.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AllocationsAdded {
    /// Ports added (those already in the pool are left as they are).
    pub added: u64,
}

/// Change an allocation of a node's pool.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationPatch {
    /// New alias (`""` clears it).
    #[serde(default)]
    #[schema(max_length = 191)]
    pub alias: Option<String>,
    /// New notes (`""` clears them).
    #[serde(default)]
    #[schema(max_length = 256)]
    pub notes: Option<String>,
}

/// A new role.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Unique name.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// What it is for.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: String,
    /// Permission patterns (`*`, `server.*`, `file.read`).
    pub permissions: Vec<String>,
}

/// A new location.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLocation {
    /// Unique short name.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: String,
}

/// Change a location.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationPatch {
    /// New name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: Option<String>,
}

/// A new node.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    /// Unique name.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// The location (data centre) the node belongs to.
    pub location_id: LocationId,
    /// Public host name.
    #[schema(min_length = 1, max_length = 253, pattern = r"^[A-Za-z0-9:][A-Za-z0-9.:-]*$")]
    pub fqdn: String,
    /// Memory to hand out, MiB.
    #[schema(minimum = 1, maximum = 1099511627776_u64)]
    pub memory_mb: u64,
    /// Disk to hand out, MiB.
    #[schema(minimum = 1, maximum = 1099511627776_u64)]
    pub disk_mb: u64,
    /// Over-allocation percent.
    #[serde(default)]
    #[schema(maximum = 1000)]
    pub overallocate_percent: u32,
}

/// Change a node.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodePatch {
    /// New name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// New location.
    #[serde(default)]
    pub location_id: Option<LocationId>,
    /// New host name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 253, pattern = r"^[A-Za-z0-9:][A-Za-z0-9.:-]*$")]
    pub fqdn: Option<String>,
    /// New memory, MiB.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1099511627776_u64)]
    pub memory_mb: Option<u64>,
    /// New disk, MiB.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1099511627776_u64)]
    pub disk_mb: Option<u64>,
    /// New over-allocation.
    #[serde(default)]
    #[schema(maximum = 1000)]
    pub overallocate_percent: Option<u32>,
}

/// A one-time deployment token, shown once.
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeploymentToken {
    /// The node it enrolls.
    pub node_id: NodeId,
    /// The token.
    pub token: String,
    /// When it stops working.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

impl fmt::Debug for DeploymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentToken")
            .field("node_id", &self.node_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A node's long-lived credential, handed to the agent once at enrollment.
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NodeCredential {
    /// The node.
    pub node_id: NodeId,
    /// The secret.
    pub token: String,
}

impl fmt::Debug for NodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCredential").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// A new server.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServer {
    /// Display name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    /// The customer.
    pub owner_id: UserId,
    /// The node to place the server on; or give `deploy` and let Catalyst choose.
    #[serde(default)]
    pub node_id: Option<NodeId>,
    /// Let Catalyst choose a node with room and a free allocation in its pool (instead of
    /// `node_id` and `allocations`).
    #[serde(default)]
    pub deploy: Option<Deploy>,
    /// The billing system's id for this service: unique, looked up exactly.
    #[serde(default)]
    #[schema(max_length = 191)]
    pub external_id: Option<String>,
    /// The template to build the server from (image, startup, variables).
    pub template_id: TemplateId,
    /// Variable values.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Resource limits (default: 1024 MiB memory, one core, 5120 MiB disk).
    #[serde(default)]
    pub limits: Limits,
    /// Endpoints; one primary (the first if none is marked). With `node_id`, at least one;
    /// addresses not yet in the node's pool are added to it. Empty with `deploy`.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub allocations: Vec<Allocation>,
    /// Crash policy.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// One of the template's images (default: the template's `image`).
    #[serde(default)]
    pub image: Option<String>,
    /// The name of one of the template's `startup_commands` (default: its `startup`).
    #[serde(default)]
    pub startup_command: Option<String>,
}

/// Change a server. Limits, allocations, the restart policy, the template, the external id and
/// the owner need a global `server.update`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerPatch {
    /// New name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: Option<String>,
    /// Changed variable values (merged).
    #[serde(default)]
    pub variables: Option<BTreeMap<String, String>>,
    /// New limits.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// New allocations.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 32)]
    pub allocations: Option<Vec<Allocation>>,
    /// New restart policy.
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    /// Another of the template's images.
    #[serde(default)]
    pub image: Option<String>,
    /// Another of the template's startup commands, by name.
    #[serde(default)]
    pub startup_command: Option<String>,
    /// Rebuild it from another template (operators): variables the new one lacks are dropped,
    /// the image and startup command go back to its defaults unless given here too.
    #[serde(default)]
    pub template_id: Option<TemplateId>,
    /// New billing id (operators; `""` clears it).
    #[serde(default)]
    #[schema(max_length = 191)]
    pub external_id: Option<String>,
    /// Hand the server to another customer (operators); the old owner loses it at once.
    #[serde(default)]
    pub owner_id: Option<UserId>,
}

/// Give a user (subuser) permissions on a server.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantAccess {
    /// The user.
    pub user_id: UserId,
    /// Server-scoped permissions.
    pub permissions: Vec<Permission>,
}

/// A new API key. It acts for its creator, never with more than they hold.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// Display name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// What the key may do: a subset of the creator's permissions.
    #[schema(min_items = 1)]
    pub scopes: Vec<Permission>,
    /// Requests allowed per window (none: unlimited).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub rate_limit: Option<u32>,
    /// Window length in seconds (default 60).
    #[serde(default = "default_rate_window")]
    #[schema(minimum = 1, maximum = 86400)]
    pub rate_window_secs: u32,
    /// When the key stops working.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

fn default_rate_window() -> u32 {
    60
}

/// Changes to an API key; absent fields stay.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyPatch {
    /// Display name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// New scopes (a subset of the caller's permissions).
    #[serde(default)]
    #[schema(min_items = 1)]
    pub scopes: Option<Vec<Permission>>,
    /// Requests allowed per window; `0` removes the limit.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// Window length in seconds.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub rate_window_secs: Option<u32>,
    /// New expiry.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// Revoke (`true`): the key stops working at once, for good.
    #[serde(default)]
    pub revoked: Option<bool>,
}

/// A created API key with its secret, which is shown this once.
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The stored key (without its secret).
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// `catalyst_<prefix>_<secret>`: send it as `x-api-key` or as a bearer token.
    pub key: String,
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey").field("api_key", &self.api_key).finish_non_exhaustive()
    }
}

/// Counts for the operator dashboard.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AdminStats {
    /// User accounts.
    pub users: u64,
    /// Servers on all nodes.
    pub servers: u64,
    /// Registered nodes, connected or not.
    pub nodes: u64,
    /// Nodes whose agent is connected.
    pub nodes_online: u64,
    /// Locations (groups of nodes).
    pub locations: u64,
    /// Server templates.
    pub templates: u64,
    /// Backups stored or being written, and the bytes they take.
    pub backups: catalyst_core::model::BackupUsage,
}

/// A node with what it has handed out.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NodeOverview {
    /// The node.
    pub node: Node,
    /// Is its agent connected?
    pub online: bool,
    /// Servers on it.
    pub servers: u64,
    /// Memory handed out, MiB.
    pub memory_used_mb: u64,
    /// Memory it may hand out (with overallocation), MiB.
    pub memory_capacity_mb: u64,
    /// Disk handed out, MiB.
    pub disk_used_mb: u64,
    /// Disk it may hand out, MiB.
    pub disk_capacity_mb: u64,
}

/// Health as operators see it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AdminHealth {
    /// `ok`, or `degraded` when the database fails or a node is offline.
    pub status: String,
    /// `ok` or what went wrong.
    pub database: String,
    /// One database round trip, milliseconds.
    pub database_ms: f64,
    /// Nodes whose agent is connected.
    pub nodes_online: u64,
    /// Nodes whose agent is not.
    pub nodes_offline: u64,
    /// Catalyst's version.
    pub version: String,
}

/// A new scheduled task.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// The server it acts on.
    pub server_id: ServerId,
    /// Display name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Cron expression (croner: optional seconds, `L`, `W`, `#`).
    #[schema(min_length = 1, max_length = 256)]
    pub cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// What it does.
    pub action: TaskAction,
    /// Fires only when enabled (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Firings missed while no control plane ran: skip them (default) or run once.
    #[serde(default)]
    pub catch_up: CatchUp,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_true() -> bool {
    true
}

/// Changes to a task; absent fields stay.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// Display name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Cron expression.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub cron: Option<String>,
    /// Time zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// What it does.
    #[serde(default)]
    pub action: Option<TaskAction>,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Missed-run policy.
    #[serde(default)]
    pub catch_up: Option<CatchUp>,
}

/// Which series of a server's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Every sample.
    #[default]
    Raw,
    /// Hourly roll-ups.
    Hour,
    /// Daily roll-ups.
    Day,
}

/// A window of a server's metrics.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Samples or roll-ups (default raw).
    #[serde(default)]
    pub resolution: Resolution,
    /// Start (default: an hour, a week or 90 days before `to`).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// End, exclusive (default now).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Most samples returned (raw only; default 1000, at most 10 000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Samples or roll-ups, oldest first.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricsSeries {
    /// Raw samples.
    Samples(Vec<ServerMetrics>),
    /// Hourly or daily summaries.
    Rollups(Vec<MetricsRollup>),
}

/// A new alert rule.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAlertRule {
    /// Display name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// When it fires.
    pub condition: AlertCondition,
    /// Severity of its alerts (default warning).
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Webhooks told about each alert.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub webhooks: Vec<WebhookTarget>,
    /// Evaluated only when enabled (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_severity() -> Severity {
    Severity::Warning
}

/// Changes to an alert rule; absent fields stay.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRulePatch {
    /// Display name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// When it fires.
    #[serde(default)]
    pub condition: Option<AlertCondition>,
    /// Severity of the alerts the rule raises.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Webhooks (replaces the list).
    #[serde(default)]
    #[schema(max_items = 10)]
    pub webhooks: Option<Vec<WebhookTarget>>,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Alert counts among what the caller may see.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AlertStats {
    /// Every alert.
    pub total: u64,
    /// Not resolved.
    pub open: u64,
    /// Resolved (kept for history).
    pub resolved: u64,
    /// Open ones by severity.
    pub open_info: u64,
    /// Open warnings.
    pub open_warning: u64,
    /// Open critical alerts.
    pub open_critical: u64,
}

/// The outcome of a bulk resolution.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BulkResolved {
    /// Alerts resolved now.
    pub resolved: u64,
    /// Alerts left alone: already resolved, missing, or not the caller's to resolve.
    pub skipped: Vec<AlertId>,
}
