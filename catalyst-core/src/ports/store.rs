//! The store ports: every record the control plane keeps, behind one [`Store`]. The shared
//! guarantees are in [`crate::ports`]' doc; each has the fake [`crate::store::MemoryStore`] and
//! the conformance suites in [`crate::testing::conformance`].

use async_trait::async_trait;

use crate::Result;
use crate::id::{
    AlertId, AlertRuleId, ApiKeyId, BackupId, LocationId, NodeId, RoleId, ServerId, SessionId, TaskId, TemplateId,
    UserId,
};
use crate::model::{
    Alert, AlertFilter, AlertRule, ApiKey, AuditLog, AuditQuery, Backup, FreeAllocation, Location, LogQuery,
    MetricsRollup, Node, NodeAllocation, Page, Paged, Period, PoolEntry, Role, ScheduledTask, Server, ServerAccess,
    ServerLog, ServerMetrics, Session, Template, User, WebhookDelivery,
};

/// A record by something other than its UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The integer id the store assigned (`number`).
    Number(u64),
    /// The billing system's id (`external_id`), matched exactly.
    External(&'a str),
}

/// Users, roles and login sessions.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Insert a user; email, username and external id are unique. Returns it with its number.
    async fn create_user(&self, user: &User) -> Result<User>;
    /// A user by id.
    async fn get_user(&self, id: UserId) -> Result<User>;
    /// A user by (lower-cased) email.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// A user by username, matched exactly.
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>>;
    /// A user by number or external id.
    async fn find_user(&self, key: Lookup<'_>) -> Result<Option<User>>;
    /// Users ordered by creation time.
    async fn list_users(&self, page: Page) -> Result<Paged<User>>;
    /// Compare-and-swap update.
    async fn update_user(&self, user: &User) -> Result<User>;
    /// Delete a user; `conflict` while they own servers. Their sessions and access go too.
    async fn delete_user(&self, id: UserId) -> Result<()>;
    /// How many users exist.
    async fn count_users(&self) -> Result<u64>;

    /// Insert a role; the name is unique.
    async fn create_role(&self, role: &Role) -> Result<()>;
    /// A role by id.
    async fn get_role(&self, id: RoleId) -> Result<Role>;
    /// A role by name.
    async fn find_role_by_name(&self, name: &str) -> Result<Option<Role>>;
    /// All roles by name.
    async fn list_roles(&self) -> Result<Vec<Role>>;
    /// Compare-and-swap update.
    async fn update_role(&self, role: &Role) -> Result<Role>;
    /// Delete a role; `conflict` while users hold it.
    async fn delete_role(&self, id: RoleId) -> Result<()>;

    /// Insert a session.
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// A session by id.
    async fn get_session(&self, id: SessionId) -> Result<Session>;
    /// Replace the refresh hash if it still equals `expected_hash` (rotation; a replayed
    /// old token loses the race and gets `conflict`).
    async fn rotate_session(&self, id: SessionId, expected_hash: &str, new_hash: &str) -> Result<()>;
    /// Revoke one session (idempotent).
    async fn revoke_session(&self, id: SessionId) -> Result<()>;
    /// Revoke every session of a user; returns how many were live.
    async fn revoke_user_sessions(&self, user: UserId) -> Result<u64>;
}

/// Locations and nodes.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Insert a location; the name is unique. Returns it with its number.
    async fn create_location(&self, location: &Location) -> Result<Location>;
    /// A location by id.
    async fn get_location(&self, id: LocationId) -> Result<Location>;
    /// All locations by name.
    async fn list_locations(&self) -> Result<Vec<Location>>;
    /// Compare-and-swap update.
    async fn update_location(&self, location: &Location) -> Result<Location>;
    /// Delete; `conflict` while nodes are in it.
    async fn delete_location(&self, id: LocationId) -> Result<()>;

    /// Insert a node; the name is unique; the location must exist (`not_found`). Returns it
    /// with its number.
    async fn create_node(&self, node: &Node) -> Result<Node>;
    /// A node by id.
    async fn get_node(&self, id: NodeId) -> Result<Node>;
    /// Nodes ordered by name.
    async fn list_nodes(&self, page: Page) -> Result<Paged<Node>>;
    /// Compare-and-swap update.
    async fn update_node(&self, node: &Node) -> Result<Node>;
    /// Delete; `conflict` while servers are on it. Its allocation pool goes with it.
    async fn delete_node(&self, id: NodeId) -> Result<()>;
    /// A location by number.
    async fn find_location(&self, number: u64) -> Result<Option<Location>>;
    /// A node by number.
    async fn find_node(&self, number: u64) -> Result<Option<Node>>;
}

/// Which pool allocations a listing returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocationFilter {
    /// Only this node's.
    pub node_id: Option<NodeId>,
    /// Only those this server holds.
    pub server_id: Option<ServerId>,
}

/// Nodes' allocation pools. `(node, ip, port)` is unique, so two servers can never hold the
/// same address: servers claim allocations in `create_server`/`update_server`, which add an
/// address that is not in the pool yet, and release them when they drop them or are deleted.
#[async_trait]
pub trait AllocationStore: Send + Sync {
    /// Add free allocations to a node's pool; addresses already in it are left as they are.
    /// Returns how many were new; `not_found` without the node.
    async fn add_allocations(&self, node: NodeId, entries: &[PoolEntry]) -> Result<u64>;
    /// Allocations by node, IP and port.
    async fn list_allocations(&self, filter: AllocationFilter, page: Page) -> Result<Paged<NodeAllocation>>;
    /// One allocation by number.
    async fn get_allocation(&self, number: u64) -> Result<NodeAllocation>;
    /// Change an allocation's alias and notes (nothing else changes here).
    async fn update_allocation(&self, allocation: &NodeAllocation) -> Result<NodeAllocation>;
    /// Remove a free allocation from its pool; `conflict` while a server holds it.
    async fn delete_allocation(&self, number: u64) -> Result<()>;
    /// The allocations any of `servers` hold, in one read.
    async fn held_by(&self, servers: &[ServerId]) -> Result<Vec<NodeAllocation>>;
    /// A free allocation of the node that fits, chosen at random (so concurrent placements
    /// rarely pick the same one; the loser's claim is a `conflict` and it tries again).
    async fn free_allocation(&self, node: NodeId, want: &FreeAllocation) -> Result<Option<NodeAllocation>>;
}

/// Templates.
#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Insert; the name is unique. Returns it with its number.
    async fn create_template(&self, template: &Template) -> Result<Template>;
    /// A template by number.
    async fn find_template(&self, number: u64) -> Result<Option<Template>>;
    /// A template by id.
    async fn get_template(&self, id: TemplateId) -> Result<Template>;
    /// Templates ordered by name.
    async fn list_templates(&self, page: Page) -> Result<Paged<Template>>;
    /// Compare-and-swap update.
    async fn update_template(&self, template: &Template) -> Result<Template>;
    /// Delete; `conflict` while servers use it.
    async fn delete_template(&self, id: TemplateId) -> Result<()>;
}

/// Which servers a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFilter {
    /// Only servers this user owns or has subuser access to.
    pub visible_to: Option<UserId>,
    /// Only servers on this node.
    pub node_id: Option<NodeId>,
    /// Only servers owned by this user.
    pub owner_id: Option<UserId>,
    /// Only servers whose UUID begins with these four bytes (Pterodactyl's 8-character
    /// `identifier`).
    pub id_prefix: Option<[u8; 4]>,
}

/// What a node has handed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeUsage {
    /// Servers on the node.
    pub servers: u64,
    /// Sum of memory limits, MiB.
    pub memory_mb: u64,
    /// Sum of disk limits, MiB.
    pub disk_mb: u64,
}

/// Servers, their allocations and their subusers.
#[async_trait]
pub trait ServerStore: Send + Sync {
    /// Insert a server and claim its allocations atomically: an allocation another server
    /// holds is a `conflict`, one not in the node's pool yet is added. The external id is unique
    /// (`conflict`); owner, node and template must exist (`not_found`). Returns it with its number.
    async fn create_server(&self, server: &Server) -> Result<Server>;
    /// A server by id.
    async fn get_server(&self, id: ServerId) -> Result<Server>;
    /// A server by number or external id.
    async fn find_server(&self, key: Lookup<'_>) -> Result<Option<Server>>;
    /// Servers by creation time.
    async fn list_servers(&self, filter: &ServerFilter, page: Page) -> Result<Paged<Server>>;
    /// Compare-and-swap update; allocations it no longer lists are released, new ones claimed
    /// as in `create_server`.
    async fn update_server(&self, server: &Server) -> Result<Server>;
    /// Delete a server, its access rows and logs; its allocations go back to the pool.
    async fn delete_server(&self, id: ServerId) -> Result<()>;
    /// Totals handed out on a node.
    async fn node_usage(&self, node: NodeId) -> Result<NodeUsage>;
    /// Totals of every node that has servers, in one read (placement).
    async fn usage_by_node(&self) -> Result<Vec<(NodeId, NodeUsage)>>;
    /// Grant or replace a user's subuser permissions on a server.
    async fn put_access(&self, access: &ServerAccess) -> Result<()>;
    /// A user's access row on a server, if any.
    async fn get_access(&self, server: ServerId, user: UserId) -> Result<Option<ServerAccess>>;
    /// Every access row of a server.
    async fn list_access(&self, server: ServerId) -> Result<Vec<ServerAccess>>;
    /// Remove a user's access; `not_found` if none.
    async fn delete_access(&self, server: ServerId, user: UserId) -> Result<()>;
}

/// Console logs.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Append lines in one transaction; a `(server, seq)` already stored is skipped, so a
    /// batch resent after a reconnect never duplicates. Returns how many were new.
    async fn append_logs(&self, lines: &[ServerLog]) -> Result<u64>;
    /// Lines of a server, newest first, filtered.
    async fn list_logs(&self, server: ServerId, query: &LogQuery) -> Result<Vec<ServerLog>>;
    /// Delete lines older than `before`; returns how many went.
    async fn prune_logs(&self, before: crate::model::Timestamp) -> Result<u64>;
}

/// The audit trail: append-only.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append one entry.
    async fn append_audit(&self, entry: &AuditLog) -> Result<()>;
    /// Entries newest first, filtered and paged.
    async fn query_audit(&self, query: &AuditQuery, page: Page) -> Result<Paged<AuditLog>>;
}

/// API keys: only a hash of each secret is stored. Deleting a user deletes their keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Insert a key; its public prefix is unique.
    async fn create_api_key(&self, key: &ApiKey) -> Result<()>;
    /// One key.
    async fn get_api_key(&self, id: ApiKeyId) -> Result<ApiKey>;
    /// The key with this public prefix, if there is one.
    async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKey>>;
    /// Keys, newest first: one user's, or everyone's.
    async fn list_api_keys(&self, user: Option<UserId>, page: Page) -> Result<Paged<ApiKey>>;
    /// Compare-and-swap update of everything but the secret and the last use.
    async fn update_api_key(&self, key: &ApiKey) -> Result<ApiKey>;
    /// Record a use; independent of `version`, so it never conflicts with an update.
    async fn touch_api_key(&self, id: ApiKeyId, at: crate::model::Timestamp) -> Result<()>;
    /// Delete a key.
    async fn delete_api_key(&self, id: ApiKeyId) -> Result<()>;
}

/// Scheduled tasks. A firing is claimed with `update_task`'s compare-and-swap, so however many
/// control planes share the store, one of them runs it. Tasks go with their server and creator.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Insert a task; its server and creator must exist.
    async fn create_task(&self, task: &ScheduledTask) -> Result<()>;
    /// One task.
    async fn get_task(&self, id: TaskId) -> Result<ScheduledTask>;
    /// Tasks of one server (or all), by next firing.
    async fn list_tasks(&self, server: Option<ServerId>, page: Page) -> Result<Paged<ScheduledTask>>;
    /// Enabled tasks whose next firing is at or before `now`, earliest first.
    async fn due_tasks(&self, now: crate::model::Timestamp, limit: u32) -> Result<Vec<ScheduledTask>>;
    /// Compare-and-swap update.
    async fn update_task(&self, task: &ScheduledTask) -> Result<ScheduledTask>;
    /// Delete a task.
    async fn delete_task(&self, id: TaskId) -> Result<()>;
}

/// Resource samples and their hourly and daily roll-ups, with retention.
#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Store samples; a `(server, at)` already stored is skipped. Returns how many were new.
    async fn append_metrics(&self, samples: &[ServerMetrics]) -> Result<u64>;
    /// Samples of a server in `[from, to)`, oldest first, at most `limit`.
    async fn list_metrics(
        &self,
        server: ServerId,
        from: crate::model::Timestamp,
        to: crate::model::Timestamp,
        limit: u32,
    ) -> Result<Vec<ServerMetrics>>;
    /// Summarise every server's samples in `[start, start + period)` (hours from samples, days
    /// from hours); running it again replaces the summary. Returns how many servers it covered.
    async fn roll_up(&self, period: Period, start: crate::model::Timestamp) -> Result<u64>;
    /// Roll-ups of a server in `[from, to)`, oldest first.
    async fn list_rollups(
        &self,
        server: ServerId,
        period: Period,
        from: crate::model::Timestamp,
        to: crate::model::Timestamp,
    ) -> Result<Vec<MetricsRollup>>;
    /// Delete samples older than `samples_before` and roll-ups of `period` older than its
    /// cut-off. Returns how many rows went.
    async fn prune_metrics(
        &self,
        samples_before: crate::model::Timestamp,
        hours_before: crate::model::Timestamp,
        days_before: crate::model::Timestamp,
    ) -> Result<u64>;
}

/// Alert rules and the alerts they raise. Deleting a rule keeps its alerts (without the rule).
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Insert a rule.
    async fn create_alert_rule(&self, rule: &AlertRule) -> Result<()>;
    /// One rule.
    async fn get_alert_rule(&self, id: AlertRuleId) -> Result<AlertRule>;
    /// Every rule, by name.
    async fn list_alert_rules(&self) -> Result<Vec<AlertRule>>;
    /// Compare-and-swap update.
    async fn update_alert_rule(&self, rule: &AlertRule) -> Result<AlertRule>;
    /// Delete a rule.
    async fn delete_alert_rule(&self, id: AlertRuleId) -> Result<()>;
    /// Insert an alert.
    async fn create_alert(&self, alert: &Alert) -> Result<()>;
    /// One alert.
    async fn get_alert(&self, id: AlertId) -> Result<Alert>;
    /// Alerts, newest first, filtered and paged.
    async fn list_alerts(&self, filter: &AlertFilter, page: Page) -> Result<Paged<Alert>>;
    /// Mark an open alert resolved; an already resolved one is `conflict`.
    async fn resolve_alert(&self, id: AlertId, by: Option<UserId>, at: crate::model::Timestamp) -> Result<Alert>;
    /// The newest alert a rule raised about a server or node (for duplicate suppression).
    async fn last_alert(
        &self,
        rule: AlertRuleId,
        server: Option<ServerId>,
        node: Option<NodeId>,
    ) -> Result<Option<Alert>>;
    /// Record a webhook delivery.
    async fn append_delivery(&self, delivery: &WebhookDelivery) -> Result<()>;
    /// Deliveries, newest first: of one alert, or all.
    async fn list_deliveries(&self, alert: Option<AlertId>, page: Page) -> Result<Paged<WebhookDelivery>>;
}

/// Backups' records (the archives live in backup storage).
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Insert a backup.
    async fn create_backup(&self, backup: &Backup) -> Result<()>;
    /// One backup.
    async fn get_backup(&self, id: BackupId) -> Result<Backup>;
    /// Compare-and-swap update of a backup's record (its server, storage and creation time
    /// never change).
    async fn update_backup(&self, backup: &Backup) -> Result<Backup>;
    /// A server's backups, newest first.
    async fn list_backups(&self, server: ServerId, page: Page) -> Result<Paged<Backup>>;
    /// Forget a backup.
    async fn delete_backup(&self, id: BackupId) -> Result<()>;
    /// How many backups exist or are being written (failed ones aside), and their bytes.
    async fn backup_usage(&self) -> Result<crate::model::BackupUsage>;
}

/// The store as a whole: what it holds open.
#[async_trait]
pub trait StoreLifecycle: Send + Sync {
    /// Close every connection, waiting until they are closed; later calls fail with
    /// `unavailable`. For the owner of the store, once nothing uses it any more.
    async fn close(&self);
}

/// Every store port; what the control plane is built on.
pub trait Store:
    UserStore
    + NodeStore
    + AllocationStore
    + TemplateStore
    + ServerStore
    + LogStore
    + AuditStore
    + ApiKeyStore
    + TaskStore
    + MetricsStore
    + AlertStore
    + BackupStore
    + StoreLifecycle
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: UserStore
        + NodeStore
        + AllocationStore
        + TemplateStore
        + ServerStore
        + LogStore
        + AuditStore
        + ApiKeyStore
        + TaskStore
        + MetricsStore
        + AlertStore
        + BackupStore
        + StoreLifecycle
        + std::fmt::Debug
{
}
