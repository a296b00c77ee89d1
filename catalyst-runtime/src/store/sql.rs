//! What SQLite and PostgreSQL share: error mapping, row types, and one macro that implements
//! the store ports for a concrete `sqlx` database. The SQL uses `$N` placeholders, which both
//! dialects accept; only bulk log appends differ and live in each adapter.

use catalyst_core::{Error, ErrorKind};

/// Map a sqlx error: uniqueness → `conflict`, references → `not_found` on insert (the
/// referenced row is missing) or `conflict` on delete (the row is still referenced).
pub(crate) fn map_err(e: sqlx::Error, unique: &str, reference: (ErrorKind, &str)) -> Error {
    if let sqlx::Error::Database(db) = &e {
        match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => return Error::conflict(unique.to_string()),
            sqlx::error::ErrorKind::ForeignKeyViolation => return Error::new(reference.0, reference.1.to_string()),
            // SQLite reports ON DELETE RESTRICT with the generic constraint code.
            _ if db.message().contains("FOREIGN KEY constraint failed") => {
                return Error::new(reference.0, reference.1.to_string());
            }
            _ => {}
        }
    }
    db_err(e)
}

/// Any other database failure.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            Error::new(ErrorKind::Unavailable, "the database is unavailable").with_source(e)
        }
        sqlx::Error::Database(db) if db.message().contains("database is locked") => {
            Error::new(ErrorKind::Unavailable, "the database is busy; retry").with_source(sqlx::Error::Database(db))
        }
        other => Error::internal("database error", other),
    }
}

/// Decode failures of stored JSON or enums are internal errors.
pub(crate) fn decode_err(what: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal(format!("stored {what} is unreadable"), e)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The JSON part of a template row.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TemplateBody {
    pub description: String,
    pub image: String,
    pub startup: String,
    pub env: std::collections::BTreeMap<String, String>,
    pub variables: Vec<catalyst_core::model::TemplateVariable>,
    pub install: Option<catalyst_core::model::InstallScript>,
    pub stop: catalyst_core::model::StopAction,
    pub done_patterns: Vec<catalyst_core::model::DonePattern>,
    pub config_files: Vec<catalyst_core::model::ConfigFileEdit>,
}

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

/// A severity as its wire name, and back.
pub(crate) fn severity_str(s: catalyst_core::model::Severity) -> &'static str {
    use catalyst_core::model::Severity;
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

pub(crate) fn severity_from(s: &str) -> catalyst_core::Result<catalyst_core::model::Severity> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| decode_err("severity", e))
}

/// A unit enum's serde name (`"in_progress"`), for TEXT columns.
pub(crate) fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A unit enum from its serde name.
pub(crate) fn enum_from<T: serde::de::DeserializeOwned>(column: &str, s: &str) -> catalyst_core::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| decode_err(column, e))
}

/// Escape `%`, `_` and `\` for a `LIKE … ESCAPE '\'` prefix match.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[macro_use]
mod users;
#[macro_use]
mod nodes;
#[macro_use]
mod servers;
#[macro_use]
mod logs;
#[macro_use]
mod api_keys;
#[macro_use]
mod tasks;
#[macro_use]
mod metrics;
#[macro_use]
mod alerts;
#[macro_use]
mod backups;

/// Implements every store port except [`catalyst_core::ports::LogStore::append_logs`]
/// (dialect-specific bulk path, provided by the adapter as `append_logs_impl`).
macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        mod sql_impl {
            use async_trait::async_trait;
            use catalyst_core::id::*;
            use catalyst_core::lifecycle::ServerState;
            use catalyst_core::model::*;
            use catalyst_core::ports::*;
            use catalyst_core::{Error, ErrorKind, Result};
            use sqlx::Row;
            use sqlx::types::Json;
            use uuid::Uuid;

            use super::super::sql::{
                ServerBody, StoredWebhook, TemplateBody, db_err, decode_err, enum_from, enum_str, like_prefix, map_err,
                severity_from, severity_str, to_i64, to_u64,
            };
            use super::*;

            type Db = $db;
            type DbRow = <Db as sqlx::Database>::Row;

            fn stale(what: &str) -> Error {
                Error::conflict(format!("the {what} was modified concurrently; reload and retry"))
            }

            fn col<'r, T: sqlx::Decode<'r, Db> + sqlx::Type<Db>>(row: &'r DbRow, name: &str) -> Result<T> {
                row.try_get(name).map_err(|e| decode_err(name, e))
            }

            async fn exists(pool: &sqlx::Pool<Db>, table: &str, id: Uuid) -> Result<bool> {
                let sql = format!("SELECT 1 FROM {table} WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await.map_err(db_err)?;
                Ok(row.is_some())
            }

            /// After an UPDATE … WHERE version = $n touched nothing: missing or stale?
            async fn cas_failure(pool: &sqlx::Pool<Db>, table: &str, id: Uuid, what: &str) -> Error {
                match exists(pool, table, id).await {
                    Ok(true) => stale(what),
                    Ok(false) => Error::not_found(what),
                    Err(e) => e,
                }
            }

            async fn user_roles(pool: &sqlx::Pool<Db>, id: Uuid) -> Result<Vec<RoleId>> {
                let rows = sqlx::query("SELECT role_id FROM user_roles WHERE user_id = $1 ORDER BY position")
                    .bind(id)
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| col::<Uuid>(r, "role_id").map(RoleId)).collect()
            }

            async fn user_from(pool: &sqlx::Pool<Db>, row: &DbRow) -> Result<User> {
                let id: Uuid = col(row, "id")?;
                Ok(User {
                    id: UserId(id),
                    email: col(row, "email")?,
                    username: col(row, "username")?,
                    password_hash: col(row, "password_hash")?,
                    roles: user_roles(pool, id).await?,
                    created_at: col(row, "created_at")?,
                    updated_at: col(row, "updated_at")?,
                    version: col(row, "version")?,
                })
            }

            fn role_from(row: &DbRow) -> Result<Role> {
                Ok(Role {
                    id: RoleId(col(row, "id")?),
                    name: col(row, "name")?,
                    description: col(row, "description")?,
                    permissions: col::<Json<Vec<String>>>(row, "permissions")?.0,
                    created_at: col(row, "created_at")?,
                    version: col(row, "version")?,
                })
            }

            fn session_from(row: &DbRow) -> Result<Session> {
                Ok(Session {
                    id: SessionId(col(row, "id")?),
                    user_id: UserId(col(row, "user_id")?),
                    refresh_hash: col(row, "refresh_hash")?,
                    created_at: col(row, "created_at")?,
                    expires_at: col(row, "expires_at")?,
                    revoked: col(row, "revoked")?,
                })
            }

            fn location_from(row: &DbRow) -> Result<Location> {
                Ok(Location {
                    id: LocationId(col(row, "id")?),
                    name: col(row, "name")?,
                    description: col(row, "description")?,
                    created_at: col(row, "created_at")?,
                    version: col(row, "version")?,
                })
            }

            fn node_from(row: &DbRow) -> Result<Node> {
                Ok(Node {
                    id: NodeId(col(row, "id")?),
                    name: col(row, "name")?,
                    location_id: LocationId(col(row, "location_id")?),
                    fqdn: col(row, "fqdn")?,
                    memory_mb: to_u64(col(row, "memory_mb")?),
                    disk_mb: to_u64(col(row, "disk_mb")?),
                    overallocate_percent: u32::try_from(col::<i64>(row, "overallocate_percent")?).unwrap_or(0),
                    deployment_token_hash: col(row, "deployment_token_hash")?,
                    deployment_token_expires_at: col(row, "deployment_token_expires_at")?,
                    credential_hash: col(row, "credential_hash")?,
                    last_seen_at: col(row, "last_seen_at")?,
                    created_at: col(row, "created_at")?,
                    version: col(row, "version")?,
                })
            }

            fn template_from(row: &DbRow) -> Result<Template> {
                let body: TemplateBody = col::<Json<TemplateBody>>(row, "body")?.0;
                Ok(Template {
                    id: TemplateId(col(row, "id")?),
                    name: col(row, "name")?,
                    description: body.description,
                    image: body.image,
                    startup: body.startup,
                    env: body.env,
                    variables: body.variables,
                    install: body.install,
                    stop: body.stop,
                    done_patterns: body.done_patterns,
                    config_files: body.config_files,
                    created_at: col(row, "created_at")?,
                    version: col(row, "version")?,
                })
            }

            fn template_body(t: &Template) -> Json<TemplateBody> {
                Json(TemplateBody {
                    description: t.description.clone(),
                    image: t.image.clone(),
                    startup: t.startup.clone(),
                    env: t.env.clone(),
                    variables: t.variables.clone(),
                    install: t.install.clone(),
                    stop: t.stop.clone(),
                    done_patterns: t.done_patterns.clone(),
                    config_files: t.config_files.clone(),
                })
            }

            fn server_from(row: &DbRow) -> Result<Server> {
                let body: ServerBody = col::<Json<ServerBody>>(row, "body")?.0;
                let state: String = col(row, "state")?;
                Ok(Server {
                    id: ServerId(col(row, "id")?),
                    name: body.name,
                    description: body.description,
                    owner_id: UserId(col(row, "owner_id")?),
                    node_id: NodeId(col(row, "node_id")?),
                    template_id: TemplateId(col(row, "template_id")?),
                    variables: body.variables,
                    limits: body.limits,
                    allocations: body.allocations,
                    restart_policy: body.restart_policy,
                    state: ServerState::parse(&state).map_err(|e| decode_err("state", e))?,
                    crash_count: body.crash_count,
                    crash_history: body.crash_history,
                    created_at: col(row, "created_at")?,
                    updated_at: col(row, "updated_at")?,
                    version: col(row, "version")?,
                })
            }

            fn server_body(s: &Server) -> Json<ServerBody> {
                Json(ServerBody {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    variables: s.variables.clone(),
                    limits: s.limits,
                    allocations: s.allocations.clone(),
                    restart_policy: s.restart_policy,
                    crash_count: s.crash_count,
                    crash_history: s.crash_history.clone(),
                })
            }

            fn access_from(row: &DbRow) -> Result<ServerAccess> {
                Ok(ServerAccess {
                    server_id: ServerId(col(row, "server_id")?),
                    user_id: UserId(col(row, "user_id")?),
                    permissions: col::<Json<Vec<catalyst_core::permission::Permission>>>(row, "permissions")?.0,
                    created_at: col(row, "created_at")?,
                })
            }

            pub(super) fn log_from(row: &DbRow) -> Result<ServerLog> {
                let stream: String = col(row, "stream")?;
                Ok(ServerLog {
                    server_id: ServerId(col(row, "server_id")?),
                    seq: col(row, "seq")?,
                    stream: LogStream::parse(&stream).map_err(|e| decode_err("stream", e))?,
                    line: col(row, "line")?,
                    at: col(row, "at")?,
                })
            }

            fn audit_from(row: &DbRow) -> Result<AuditLog> {
                Ok(AuditLog {
                    id: AuditId(col(row, "id")?),
                    actor: col::<Json<ActorRef>>(row, "actor")?.0,
                    user_id: col::<Option<Uuid>>(row, "user_id")?.map(UserId),
                    action: col(row, "action")?,
                    target_type: col(row, "target_type")?,
                    target_id: col(row, "target_id")?,
                    success: col(row, "success")?,
                    details: col::<Json<serde_json::Value>>(row, "details")?.0,
                    ip: col(row, "ip")?,
                    at: col(row, "at")?,
                })
            }

            fn api_key_from(row: &DbRow) -> Result<ApiKey> {
                Ok(ApiKey {
                    id: ApiKeyId(col(row, "id")?),
                    name: col(row, "name")?,
                    prefix: col(row, "prefix")?,
                    secret_hash: col(row, "secret_hash")?,
                    user_id: UserId(col(row, "user_id")?),
                    scopes: col::<Json<Vec<catalyst_core::permission::Permission>>>(row, "scopes")?.0,
                    rate_limit: col::<Option<i64>>(row, "rate_limit")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                    rate_window_secs: u32::try_from(col::<i64>(row, "rate_window_secs")?).unwrap_or(u32::MAX),
                    expires_at: col(row, "expires_at")?,
                    last_used_at: col(row, "last_used_at")?,
                    revoked: col(row, "revoked")?,
                    created_at: col(row, "created_at")?,
                    version: col(row, "version")?,
                })
            }

            fn task_from(row: &DbRow) -> Result<ScheduledTask> {
                Ok(ScheduledTask {
                    id: TaskId(col(row, "id")?),
                    server_id: ServerId(col(row, "server_id")?),
                    name: col(row, "name")?,
                    cron: col(row, "cron")?,
                    timezone: col(row, "timezone")?,
                    action: col::<Json<TaskAction>>(row, "action")?.0,
                    enabled: col(row, "enabled")?,
                    catch_up: col::<Json<CatchUp>>(row, "catch_up")?.0,
                    created_by: UserId(col(row, "created_by")?),
                    last_run_at: col(row, "last_run_at")?,
                    next_run_at: col(row, "next_run_at")?,
                    run_count: to_u64(col(row, "run_count")?),
                    last_result: col(row, "last_result")?,
                    last_error: col(row, "last_error")?,
                    version: col(row, "version")?,
                })
            }

            fn metrics_from(row: &DbRow) -> Result<ServerMetrics> {
                Ok(ServerMetrics {
                    server_id: ServerId(col(row, "server_id")?),
                    at: col(row, "at")?,
                    cpu_percent: col(row, "cpu_percent")?,
                    memory_bytes: to_u64(col(row, "memory_bytes")?),
                    memory_limit_bytes: to_u64(col(row, "memory_limit_bytes")?),
                    rx_bytes: to_u64(col(row, "rx_bytes")?),
                    tx_bytes: to_u64(col(row, "tx_bytes")?),
                    disk_bytes: to_u64(col(row, "disk_bytes")?),
                })
            }

            fn rollup_from(row: &DbRow, period: Period) -> Result<MetricsRollup> {
                Ok(MetricsRollup {
                    server_id: ServerId(col(row, "server_id")?),
                    period,
                    start: col(row, "start")?,
                    samples: to_u64(col(row, "samples")?),
                    cpu_avg: col(row, "cpu_avg")?,
                    cpu_max: col(row, "cpu_max")?,
                    memory_avg_bytes: col(row, "memory_avg_bytes")?,
                    memory_max_bytes: to_u64(col(row, "memory_max_bytes")?),
                    disk_max_bytes: to_u64(col(row, "disk_max_bytes")?),
                    rx_bytes: to_u64(col(row, "rx_bytes")?),
                    tx_bytes: to_u64(col(row, "tx_bytes")?),
                })
            }

            fn alert_rule_from(row: &DbRow) -> Result<AlertRule> {
                Ok(AlertRule {
                    id: AlertRuleId(col(row, "id")?),
                    name: col(row, "name")?,
                    condition: col::<Json<AlertCondition>>(row, "condition")?.0,
                    severity: severity_from(&col::<String>(row, "severity")?)?,
                    webhooks: col::<Json<Vec<StoredWebhook>>>(row, "webhooks")?
                        .0
                        .into_iter()
                        .map(StoredWebhook::into_target)
                        .collect(),
                    enabled: col(row, "enabled")?,
                    created_by: UserId(col(row, "created_by")?),
                    version: col(row, "version")?,
                })
            }

            fn alert_from(row: &DbRow) -> Result<Alert> {
                Ok(Alert {
                    id: AlertId(col(row, "id")?),
                    rule_id: col::<Option<Uuid>>(row, "rule_id")?.map(AlertRuleId),
                    server_id: col::<Option<Uuid>>(row, "server_id")?.map(ServerId),
                    node_id: col::<Option<Uuid>>(row, "node_id")?.map(NodeId),
                    kind: col(row, "kind")?,
                    severity: severity_from(&col::<String>(row, "severity")?)?,
                    message: col(row, "message")?,
                    resolved: col(row, "resolved")?,
                    created_at: col(row, "created_at")?,
                    resolved_at: col(row, "resolved_at")?,
                    resolved_by: col::<Option<Uuid>>(row, "resolved_by")?.map(UserId),
                })
            }

            fn delivery_from(row: &DbRow) -> Result<WebhookDelivery> {
                Ok(WebhookDelivery {
                    id: DeliveryId(col(row, "id")?),
                    alert_id: col::<Option<Uuid>>(row, "alert_id")?.map(AlertId),
                    url: col(row, "url")?,
                    event: col(row, "event")?,
                    delivered: col(row, "delivered")?,
                    attempts: u32::try_from(col::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
                    status: col::<Option<i64>>(row, "status")?.and_then(|s| u16::try_from(s).ok()),
                    error: col(row, "error")?,
                    at: col(row, "at")?,
                })
            }

            fn limit_offset(page: Page) -> (i64, i64) {
                (i64::from(page.effective_limit()), to_i64(page.offset))
            }

            async fn write_user_roles(tx: &mut sqlx::Transaction<'_, Db>, user: &User) -> Result<()> {
                sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
                    .bind(user.id.0)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                for (i, role) in user.roles.iter().enumerate() {
                    sqlx::query("INSERT INTO user_roles (user_id, role_id, position) VALUES ($1, $2, $3)")
                        .bind(user.id.0)
                        .bind(role.0)
                        .bind(i as i64)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| map_err(e, "the role is listed twice", (ErrorKind::NotFound, "role not found")))?;
                }
                Ok(())
            }

            sql_users!($store);
            sql_nodes!($store);
            sql_servers!($store);
            sql_logs!($store);
            sql_api_keys!($store);
            sql_tasks!($store);
            sql_metrics!($store);
            sql_alerts!($store);
            sql_backups!($store);
        }
    };
}
