//! Rows as stored, one struct per table, decoded by `sqlx::FromRow` (generic over the row
//! type, so one struct serves SQLite and PostgreSQL), and their conversion into the models.
//! Unsigned counters are `BIGINT` columns: they are read as `i64` and clamped here.

use catalyst_core::id::{
    AlertId, AlertRuleId, ApiKeyId, AuditId, BackupId, DeliveryId, LocationId, NodeId, RoleId, ServerId, SessionId,
    TaskId, TemplateId, UserId,
};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{
    ActorRef, Alert, AlertCondition, AlertRule, ApiKey, AuditLog, Backup, CatchUp, Location, LogStream, MetricsRollup,
    Node, NodeAllocation, Role, ScheduledTask, Server, ServerAccess, ServerLog, ServerMetrics, Session, TaskAction,
    Template, Timestamp, User, WebhookDelivery,
};
use catalyst_core::permission::Permission;
use catalyst_core::{Error, Result};
use sqlx::types::Json;
use uuid::Uuid;

use super::{decode_err, enum_from, severity_from, to_u64};

/// The JSON part of a template row: the template's input without its name (a column). Fields
/// added later have serde defaults, so rows written before them still load.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct TemplateBody(serde_json::Map<String, serde_json::Value>);

/// The JSON part of a server row.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ServerBody {
    pub name: String,
    pub description: String,
    pub variables: std::collections::BTreeMap<String, String>,
    pub limits: catalyst_core::model::Limits,
    pub allocations: Vec<catalyst_core::model::Allocation>,
    pub restart_policy: catalyst_core::restart::RestartPolicy,
    pub crash_count: u32,
    pub crash_history: Vec<catalyst_core::model::Timestamp>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub startup_command: Option<String>,
}

/// A webhook as stored: unlike the API's view, it keeps its secret.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredWebhook {
    pub url: String,
    pub format: catalyst_core::model::WebhookFormat,
    pub secret: Option<String>,
}

impl StoredWebhook {
    pub fn from_targets(targets: &[catalyst_core::model::WebhookTarget]) -> Vec<Self> {
        targets.iter().map(|t| Self { url: t.url.clone(), format: t.format, secret: t.secret.clone() }).collect()
    }

    pub fn into_target(self) -> catalyst_core::model::WebhookTarget {
        catalyst_core::model::WebhookTarget { url: self.url, format: self.format, secret: self.secret }
    }
}

impl TemplateBody {
    /// The JSON part of `t`.
    pub fn of(t: &Template) -> Json<Self> {
        let mut body = match serde_json::to_value(catalyst_core::model::NewTemplate::from_template(t)) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        body.remove("name");
        Json(Self(body))
    }
}

impl ServerBody {
    /// The JSON part of `s`.
    pub fn of(s: &Server) -> Json<Self> {
        Json(Self {
            name: s.name.clone(),
            description: s.description.clone(),
            variables: s.variables.clone(),
            limits: s.limits,
            allocations: s.allocations.clone(),
            restart_policy: s.restart_policy,
            crash_count: s.crash_count,
            crash_history: s.crash_history.clone(),
            image: s.image.clone(),
            startup_command: s.startup_command.clone(),
        })
    }
}

/// A `users` row; its roles live in `user_roles`.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: Uuid,
    number: i64,
    external_id: Option<String>,
    first_name: String,
    last_name: String,
    email: String,
    username: String,
    password_hash: String,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: i64,
}

impl UserRow {
    /// The user, given its roles in order.
    pub fn into_user(self, roles: Vec<RoleId>) -> User {
        User {
            id: UserId(self.id),
            number: to_u64(self.number),
            external_id: self.external_id,
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            username: self.username,
            password_hash: self.password_hash,
            roles,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

/// One `user_roles` row.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRoleRow {
    pub user_id: Uuid,
    pub role_id: Uuid,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RoleRow {
    id: Uuid,
    name: String,
    description: String,
    permissions: Json<Vec<String>>,
    created_at: Timestamp,
    version: i64,
}

impl TryFrom<RoleRow> for Role {
    type Error = Error;
    fn try_from(r: RoleRow) -> Result<Self> {
        Ok(Role {
            id: RoleId(r.id),
            name: r.name,
            description: r.description,
            permissions: r.permissions.0,
            created_at: r.created_at,
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    refresh_hash: String,
    created_at: Timestamp,
    expires_at: Timestamp,
    revoked: bool,
}

impl TryFrom<SessionRow> for Session {
    type Error = Error;
    fn try_from(r: SessionRow) -> Result<Self> {
        Ok(Session {
            id: SessionId(r.id),
            user_id: UserId(r.user_id),
            refresh_hash: r.refresh_hash,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked: r.revoked,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LocationRow {
    id: Uuid,
    number: i64,
    name: String,
    description: String,
    created_at: Timestamp,
    version: i64,
}

impl TryFrom<LocationRow> for Location {
    type Error = Error;
    fn try_from(r: LocationRow) -> Result<Self> {
        Ok(Location {
            id: LocationId(r.id),
            number: to_u64(r.number),
            name: r.name,
            description: r.description,
            created_at: r.created_at,
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct NodeRow {
    id: Uuid,
    number: i64,
    name: String,
    location_id: Uuid,
    fqdn: String,
    memory_mb: i64,
    disk_mb: i64,
    overallocate_percent: i64,
    deployment_token_hash: Option<String>,
    deployment_token_expires_at: Option<Timestamp>,
    credential_hash: Option<String>,
    last_seen_at: Option<Timestamp>,
    created_at: Timestamp,
    version: i64,
}

impl TryFrom<NodeRow> for Node {
    type Error = Error;
    fn try_from(r: NodeRow) -> Result<Self> {
        Ok(Node {
            id: NodeId(r.id),
            number: to_u64(r.number),
            name: r.name,
            location_id: LocationId(r.location_id),
            fqdn: r.fqdn,
            memory_mb: to_u64(r.memory_mb),
            disk_mb: to_u64(r.disk_mb),
            overallocate_percent: u32::try_from(r.overallocate_percent).unwrap_or(0),
            deployment_token_hash: r.deployment_token_hash,
            deployment_token_expires_at: r.deployment_token_expires_at,
            credential_hash: r.credential_hash,
            last_seen_at: r.last_seen_at,
            created_at: r.created_at,
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TemplateRow {
    id: Uuid,
    number: i64,
    name: String,
    body: Json<TemplateBody>,
    created_at: Timestamp,
    version: i64,
}

impl TryFrom<TemplateRow> for Template {
    type Error = Error;
    fn try_from(r: TemplateRow) -> Result<Self> {
        let mut body = r.body.0.0;
        body.insert("name".into(), serde_json::Value::String(r.name));
        let input: catalyst_core::model::NewTemplate =
            serde_json::from_value(serde_json::Value::Object(body)).map_err(|e| decode_err("template body", e))?;
        let template = input.into_template(TemplateId(r.id), r.created_at, r.version);
        Ok(Template { number: to_u64(r.number), ..template })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ServerRow {
    id: Uuid,
    number: i64,
    external_id: Option<String>,
    owner_id: Uuid,
    node_id: Uuid,
    template_id: Uuid,
    state: String,
    body: Json<ServerBody>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: i64,
}

impl TryFrom<ServerRow> for Server {
    type Error = Error;
    fn try_from(r: ServerRow) -> Result<Self> {
        let body = r.body.0;
        Ok(Server {
            id: ServerId(r.id),
            number: to_u64(r.number),
            external_id: r.external_id,
            name: body.name,
            description: body.description,
            owner_id: UserId(r.owner_id),
            node_id: NodeId(r.node_id),
            template_id: TemplateId(r.template_id),
            variables: body.variables,
            limits: body.limits,
            allocations: body.allocations,
            restart_policy: body.restart_policy,
            image: body.image,
            startup_command: body.startup_command,
            state: ServerState::parse(&r.state).map_err(|e| decode_err("state", e))?,
            crash_count: body.crash_count,
            crash_history: body.crash_history,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// An `allocations` row: one address of a node's pool.
#[derive(sqlx::FromRow)]
pub(crate) struct AllocationRow {
    number: i64,
    node_id: Uuid,
    ip: String,
    port: i64,
    alias: Option<String>,
    notes: Option<String>,
    server_id: Option<Uuid>,
}

impl TryFrom<AllocationRow> for NodeAllocation {
    type Error = Error;
    fn try_from(r: AllocationRow) -> Result<Self> {
        Ok(NodeAllocation {
            number: to_u64(r.number),
            node_id: NodeId(r.node_id),
            ip: r.ip,
            port: u16::try_from(r.port).map_err(|e| decode_err("port", e))?,
            alias: r.alias,
            notes: r.notes,
            server_id: r.server_id.map(ServerId),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow {
    server_id: Uuid,
    user_id: Uuid,
    permissions: Json<Vec<Permission>>,
    created_at: Timestamp,
}

impl TryFrom<AccessRow> for ServerAccess {
    type Error = Error;
    fn try_from(r: AccessRow) -> Result<Self> {
        Ok(ServerAccess {
            server_id: ServerId(r.server_id),
            user_id: UserId(r.user_id),
            permissions: r.permissions.0,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LogRow {
    server_id: Uuid,
    seq: i64,
    stream: String,
    line: String,
    at: Timestamp,
}

impl TryFrom<LogRow> for ServerLog {
    type Error = Error;
    fn try_from(r: LogRow) -> Result<Self> {
        Ok(ServerLog {
            server_id: ServerId(r.server_id),
            seq: r.seq,
            stream: LogStream::parse(&r.stream).map_err(|e| decode_err("stream", e))?,
            line: r.line,
            at: r.at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: Uuid,
    actor: Json<ActorRef>,
    user_id: Option<Uuid>,
    action: String,
    target_type: String,
    target_id: Option<String>,
    success: bool,
    details: Json<serde_json::Value>,
    ip: Option<String>,
    at: Timestamp,
}

impl TryFrom<AuditRow> for AuditLog {
    type Error = Error;
    fn try_from(r: AuditRow) -> Result<Self> {
        Ok(AuditLog {
            id: AuditId(r.id),
            actor: r.actor.0,
            user_id: r.user_id.map(UserId),
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            success: r.success,
            details: r.details.0,
            ip: r.ip,
            at: r.at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    secret_hash: String,
    user_id: Uuid,
    scopes: Json<Vec<Permission>>,
    rate_limit: Option<i64>,
    rate_window_secs: i64,
    expires_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    revoked: bool,
    created_at: Timestamp,
    version: i64,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = Error;
    fn try_from(r: ApiKeyRow) -> Result<Self> {
        Ok(ApiKey {
            id: ApiKeyId(r.id),
            name: r.name,
            prefix: r.prefix,
            secret_hash: r.secret_hash,
            user_id: UserId(r.user_id),
            scopes: r.scopes.0,
            rate_limit: r.rate_limit.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            rate_window_secs: u32::try_from(r.rate_window_secs).unwrap_or(u32::MAX),
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked: r.revoked,
            created_at: r.created_at,
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    id: Uuid,
    server_id: Uuid,
    name: String,
    cron: String,
    timezone: String,
    action: Json<TaskAction>,
    enabled: bool,
    catch_up: Json<CatchUp>,
    created_by: Uuid,
    last_run_at: Option<Timestamp>,
    next_run_at: Option<Timestamp>,
    run_count: i64,
    last_result: Option<String>,
    last_error: Option<String>,
    version: i64,
}

impl TryFrom<TaskRow> for ScheduledTask {
    type Error = Error;
    fn try_from(r: TaskRow) -> Result<Self> {
        Ok(ScheduledTask {
            id: TaskId(r.id),
            server_id: ServerId(r.server_id),
            name: r.name,
            cron: r.cron,
            timezone: r.timezone,
            action: r.action.0,
            enabled: r.enabled,
            catch_up: r.catch_up.0,
            created_by: UserId(r.created_by),
            last_run_at: r.last_run_at,
            next_run_at: r.next_run_at,
            run_count: to_u64(r.run_count),
            last_result: r.last_result,
            last_error: r.last_error,
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MetricsRow {
    server_id: Uuid,
    at: Timestamp,
    cpu_percent: f64,
    memory_bytes: i64,
    memory_limit_bytes: i64,
    rx_bytes: i64,
    tx_bytes: i64,
    disk_bytes: i64,
}

impl TryFrom<MetricsRow> for ServerMetrics {
    type Error = Error;
    fn try_from(r: MetricsRow) -> Result<Self> {
        Ok(ServerMetrics {
            server_id: ServerId(r.server_id),
            at: r.at,
            cpu_percent: r.cpu_percent,
            memory_bytes: to_u64(r.memory_bytes),
            memory_limit_bytes: to_u64(r.memory_limit_bytes),
            rx_bytes: to_u64(r.rx_bytes),
            tx_bytes: to_u64(r.tx_bytes),
            disk_bytes: to_u64(r.disk_bytes),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RollupRow {
    server_id: Uuid,
    period: String,
    start: Timestamp,
    samples: i64,
    cpu_avg: f64,
    cpu_max: f64,
    memory_avg_bytes: f64,
    memory_max_bytes: i64,
    disk_max_bytes: i64,
    rx_bytes: i64,
    tx_bytes: i64,
}

impl TryFrom<RollupRow> for MetricsRollup {
    type Error = Error;
    fn try_from(r: RollupRow) -> Result<Self> {
        Ok(MetricsRollup {
            server_id: ServerId(r.server_id),
            period: enum_from("period", &r.period)?,
            start: r.start,
            samples: to_u64(r.samples),
            cpu_avg: r.cpu_avg,
            cpu_max: r.cpu_max,
            memory_avg_bytes: r.memory_avg_bytes,
            memory_max_bytes: to_u64(r.memory_max_bytes),
            disk_max_bytes: to_u64(r.disk_max_bytes),
            rx_bytes: to_u64(r.rx_bytes),
            tx_bytes: to_u64(r.tx_bytes),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRuleRow {
    id: Uuid,
    name: String,
    condition: Json<AlertCondition>,
    severity: String,
    webhooks: Json<Vec<StoredWebhook>>,
    enabled: bool,
    created_by: Uuid,
    version: i64,
}

impl TryFrom<AlertRuleRow> for AlertRule {
    type Error = Error;
    fn try_from(r: AlertRuleRow) -> Result<Self> {
        Ok(AlertRule {
            id: AlertRuleId(r.id),
            name: r.name,
            condition: r.condition.0,
            severity: severity_from(&r.severity)?,
            webhooks: r.webhooks.0.into_iter().map(StoredWebhook::into_target).collect(),
            enabled: r.enabled,
            created_by: UserId(r.created_by),
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: Uuid,
    rule_id: Option<Uuid>,
    server_id: Option<Uuid>,
    node_id: Option<Uuid>,
    kind: String,
    severity: String,
    message: String,
    resolved: bool,
    created_at: Timestamp,
    resolved_at: Option<Timestamp>,
    resolved_by: Option<Uuid>,
}

impl TryFrom<AlertRow> for Alert {
    type Error = Error;
    fn try_from(r: AlertRow) -> Result<Self> {
        Ok(Alert {
            id: AlertId(r.id),
            rule_id: r.rule_id.map(AlertRuleId),
            server_id: r.server_id.map(ServerId),
            node_id: r.node_id.map(NodeId),
            kind: r.kind,
            severity: severity_from(&r.severity)?,
            message: r.message,
            resolved: r.resolved,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by.map(UserId),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: Uuid,
    alert_id: Option<Uuid>,
    url: String,
    event: String,
    delivered: bool,
    attempts: i64,
    status: Option<i64>,
    error: Option<String>,
    at: Timestamp,
}

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = Error;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(WebhookDelivery {
            id: DeliveryId(r.id),
            alert_id: r.alert_id.map(AlertId),
            url: r.url,
            event: r.event,
            delivered: r.delivered,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            status: r.status.and_then(|s| u16::try_from(s).ok()),
            error: r.error,
            at: r.at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BackupRow {
    id: Uuid,
    server_id: Uuid,
    node_id: Uuid,
    name: String,
    status: String,
    storage: String,
    size_bytes: i64,
    checksum: Option<String>,
    locked: bool,
    error: Option<String>,
    created_at: Timestamp,
    completed_at: Option<Timestamp>,
    version: i64,
}

impl TryFrom<BackupRow> for Backup {
    type Error = Error;
    fn try_from(r: BackupRow) -> Result<Self> {
        Ok(Backup {
            id: BackupId(r.id),
            server_id: ServerId(r.server_id),
            node_id: NodeId(r.node_id),
            name: r.name,
            status: enum_from("status", &r.status)?,
            storage: enum_from("storage", &r.storage)?,
            size_bytes: to_u64(r.size_bytes),
            checksum: r.checksum,
            locked: r.locked,
            error: r.error,
            created_at: r.created_at,
            completed_at: r.completed_at,
            version: r.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body as stored before eggs (rules as an object, config values as strings) still loads,
    /// and translates to what the model says now: no migration needed.
    #[test]
    fn template_bodies_written_before_eggs_still_load() {
        let old = serde_json::json!({
            "description": "old", "image": "img:1", "startup": "./run --slots {{SLOTS}}", "env": {},
            "variables": [{"name": "SLOTS", "description": "", "default": "10", "user_editable": true,
                           "rules": {"required": true, "kind": "int", "min": 1, "max": 100, "regex": null, "one_of": null}}],
            "install": null, "stop": {"type": "command", "value": "stop"}, "done_patterns": [],
            "config_files": [{"path": "server.properties", "format": "properties", "set": {"max-players": "{{SLOTS}}"}}],
        });
        let serde_json::Value::Object(map) = old else { unreachable!() };
        let row = TemplateRow {
            id: Uuid::new_v4(),
            number: 1,
            name: "legacy".into(),
            body: Json(TemplateBody(map)),
            created_at: chrono::Utc::now(),
            version: 3,
        };
        let t = Template::try_from(row).expect("loads");
        assert_eq!(t.variables[0].rules.0, ["required", "integer", "min:1", "max:100"]);
        assert!(t.variables[0].user_viewable);
        assert_eq!(t.config_files[0].set["max-players"], catalyst_core::model::ConfigValue::Always("{{SLOTS}}".into()));
        assert_eq!(
            (t.startup_mode, t.images.len(), t.egg.is_none()),
            (catalyst_core::model::StartupMode::Shell, 0, true)
        );
        // Written back, it loads as the same template.
        let again = TemplateRow {
            id: t.id.0,
            number: 1,
            name: t.name.clone(),
            body: TemplateBody::of(&t),
            created_at: t.created_at,
            version: 3,
        };
        assert_eq!(Template::try_from(again).expect("loads"), t);
    }
}
