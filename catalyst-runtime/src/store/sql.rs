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
                    webhooks: col::<Json<Vec<StoredWebhook>>>(row, "webhooks")?.0.into_iter().map(StoredWebhook::into_target).collect(),
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

            #[async_trait]
            impl UserStore for $store {
                async fn create_user(&self, user: &User) -> Result<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query(
                        "INSERT INTO users (id, email, username, password_hash, created_at, updated_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(user.id.0)
                    .bind(&user.email)
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind(user.created_at)
                    .bind(user.updated_at)
                    .bind(user.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(e, "email or username is already registered", (ErrorKind::NotFound, "")))?;
                    write_user_roles(&mut tx, user).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn get_user(&self, id: UserId) -> Result<User> {
                    let row = sqlx::query("SELECT * FROM users WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("user"))?;
                    user_from(&self.pool, &row).await
                }

                async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
                    let row = sqlx::query("SELECT * FROM users WHERE email = $1")
                        .bind(email)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    match row {
                        Some(row) => Ok(Some(user_from(&self.pool, &row).await?)),
                        None => Ok(None),
                    }
                }

                async fn list_users(&self, page: Page) -> Result<Paged<User>> {
                    let (limit, offset) = limit_offset(page);
                    let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2")
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let mut items = Vec::with_capacity(rows.len());
                    for row in &rows {
                        items.push(user_from(&self.pool, row).await?);
                    }
                    Ok(Paged { items, total: self.count_users().await? })
                }

                async fn update_user(&self, user: &User) -> Result<User> {
                    let mut tx = self.write_tx().await?;
                    let done = sqlx::query(
                        "UPDATE users SET email = $1, username = $2, password_hash = $3, updated_at = $4, \
                         version = version + 1 WHERE id = $5 AND version = $6",
                    )
                    .bind(&user.email)
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind(user.updated_at)
                    .bind(user.id.0)
                    .bind(user.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(e, "email or username is already registered", (ErrorKind::NotFound, "")))?;
                    if done.rows_affected() == 0 {
                        drop(tx);
                        return Err(cas_failure(&self.pool, "users", user.id.0, "user").await);
                    }
                    write_user_roles(&mut tx, user).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(User { version: user.version + 1, ..user.clone() })
                }

                async fn delete_user(&self, id: UserId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM users WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "the user still owns servers")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("user")) } else { Ok(()) }
                }

                async fn count_users(&self) -> Result<u64> {
                    let row = sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.pool).await.map_err(db_err)?;
                    Ok(to_u64(col(&row, "n")?))
                }

                async fn create_role(&self, role: &Role) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO roles (id, name, description, permissions, created_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(role.id.0)
                    .bind(&role.name)
                    .bind(&role.description)
                    .bind(Json(&role.permissions))
                    .bind(role.created_at)
                    .bind(role.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "role name is taken", (ErrorKind::NotFound, "")))?;
                    Ok(())
                }

                async fn get_role(&self, id: RoleId) -> Result<Role> {
                    let row = sqlx::query("SELECT * FROM roles WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("role"))?;
                    role_from(&row)
                }

                async fn find_role_by_name(&self, name: &str) -> Result<Option<Role>> {
                    let row = sqlx::query("SELECT * FROM roles WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(role_from).transpose()
                }

                async fn list_roles(&self) -> Result<Vec<Role>> {
                    let rows =
                        sqlx::query("SELECT * FROM roles ORDER BY name").fetch_all(&self.pool).await.map_err(db_err)?;
                    rows.iter().map(role_from).collect()
                }

                async fn update_role(&self, role: &Role) -> Result<Role> {
                    let done = sqlx::query(
                        "UPDATE roles SET name = $1, description = $2, permissions = $3, version = version + 1 \
                         WHERE id = $4 AND version = $5",
                    )
                    .bind(&role.name)
                    .bind(&role.description)
                    .bind(Json(&role.permissions))
                    .bind(role.id.0)
                    .bind(role.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "role name is taken", (ErrorKind::NotFound, "")))?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "roles", role.id.0, "role").await);
                    }
                    Ok(Role { version: role.version + 1, ..role.clone() })
                }

                async fn delete_role(&self, id: RoleId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM roles WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "users still hold this role")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("role")) } else { Ok(()) }
                }

                async fn create_session(&self, session: &Session) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at, revoked) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(session.id.0)
                    .bind(session.user_id.0)
                    .bind(&session.refresh_hash)
                    .bind(session.created_at)
                    .bind(session.expires_at)
                    .bind(session.revoked)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "session exists", (ErrorKind::NotFound, "user not found")))?;
                    Ok(())
                }

                async fn get_session(&self, id: SessionId) -> Result<Session> {
                    let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("session"))?;
                    session_from(&row)
                }

                async fn rotate_session(&self, id: SessionId, expected_hash: &str, new_hash: &str) -> Result<()> {
                    let done = sqlx::query(
                        "UPDATE sessions SET refresh_hash = $1 WHERE id = $2 AND refresh_hash = $3 AND revoked = FALSE",
                    )
                    .bind(new_hash)
                    .bind(id.0)
                    .bind(expected_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 1 {
                        return Ok(());
                    }
                    if exists(&self.pool, "sessions", id.0).await? {
                        Err(Error::conflict("refresh token was already used"))
                    } else {
                        Err(Error::not_found("session"))
                    }
                }

                async fn revoke_session(&self, id: SessionId) -> Result<()> {
                    let done = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("session")) } else { Ok(()) }
                }

                async fn revoke_user_sessions(&self, user: UserId) -> Result<u64> {
                    let done = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE user_id = $1 AND revoked = FALSE")
                        .bind(user.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl NodeStore for $store {
                async fn create_location(&self, l: &Location) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO locations (id, name, description, created_at, version) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(l.id.0)
                    .bind(&l.name)
                    .bind(&l.description)
                    .bind(l.created_at)
                    .bind(l.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "location name is taken", (ErrorKind::NotFound, "")))?;
                    Ok(())
                }

                async fn get_location(&self, id: LocationId) -> Result<Location> {
                    let row = sqlx::query("SELECT * FROM locations WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("location"))?;
                    location_from(&row)
                }

                async fn list_locations(&self) -> Result<Vec<Location>> {
                    let rows = sqlx::query("SELECT * FROM locations ORDER BY name")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(location_from).collect()
                }

                async fn update_location(&self, l: &Location) -> Result<Location> {
                    let done = sqlx::query(
                        "UPDATE locations SET name = $1, description = $2, version = version + 1 \
                         WHERE id = $3 AND version = $4",
                    )
                    .bind(&l.name)
                    .bind(&l.description)
                    .bind(l.id.0)
                    .bind(l.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "location name is taken", (ErrorKind::NotFound, "")))?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "locations", l.id.0, "location").await);
                    }
                    Ok(Location { version: l.version + 1, ..l.clone() })
                }

                async fn delete_location(&self, id: LocationId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM locations WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "nodes are still in this location")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("location")) } else { Ok(()) }
                }

                async fn create_node(&self, n: &Node) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO nodes (id, name, location_id, fqdn, memory_mb, disk_mb, overallocate_percent, \
                         deployment_token_hash, deployment_token_expires_at, credential_hash, last_seen_at, \
                         created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    )
                    .bind(n.id.0)
                    .bind(&n.name)
                    .bind(n.location_id.0)
                    .bind(&n.fqdn)
                    .bind(to_i64(n.memory_mb))
                    .bind(to_i64(n.disk_mb))
                    .bind(i64::from(n.overallocate_percent))
                    .bind(&n.deployment_token_hash)
                    .bind(n.deployment_token_expires_at)
                    .bind(&n.credential_hash)
                    .bind(n.last_seen_at)
                    .bind(n.created_at)
                    .bind(n.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "node name is taken", (ErrorKind::NotFound, "location not found")))?;
                    Ok(())
                }

                async fn get_node(&self, id: NodeId) -> Result<Node> {
                    let row = sqlx::query("SELECT * FROM nodes WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("node"))?;
                    node_from(&row)
                }

                async fn list_nodes(&self, page: Page) -> Result<Paged<Node>> {
                    let (limit, offset) = limit_offset(page);
                    let rows = sqlx::query("SELECT * FROM nodes ORDER BY name LIMIT $1 OFFSET $2")
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM nodes")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(node_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn update_node(&self, n: &Node) -> Result<Node> {
                    let done = sqlx::query(
                        "UPDATE nodes SET name = $1, location_id = $2, fqdn = $3, memory_mb = $4, disk_mb = $5, \
                         overallocate_percent = $6, deployment_token_hash = $7, deployment_token_expires_at = $8, \
                         credential_hash = $9, last_seen_at = $10, version = version + 1 \
                         WHERE id = $11 AND version = $12",
                    )
                    .bind(&n.name)
                    .bind(n.location_id.0)
                    .bind(&n.fqdn)
                    .bind(to_i64(n.memory_mb))
                    .bind(to_i64(n.disk_mb))
                    .bind(i64::from(n.overallocate_percent))
                    .bind(&n.deployment_token_hash)
                    .bind(n.deployment_token_expires_at)
                    .bind(&n.credential_hash)
                    .bind(n.last_seen_at)
                    .bind(n.id.0)
                    .bind(n.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "node name is taken", (ErrorKind::NotFound, "location not found")))?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "nodes", n.id.0, "node").await);
                    }
                    Ok(Node { version: n.version + 1, ..n.clone() })
                }

                async fn delete_node(&self, id: NodeId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "servers are still on this node")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("node")) } else { Ok(()) }
                }
            }

            #[async_trait]
            impl TemplateStore for $store {
                async fn create_template(&self, t: &Template) -> Result<()> {
                    sqlx::query("INSERT INTO templates (id, name, body, created_at, version) VALUES ($1, $2, $3, $4, $5)")
                        .bind(t.id.0)
                        .bind(&t.name)
                        .bind(template_body(t))
                        .bind(t.created_at)
                        .bind(t.version)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "template name is taken", (ErrorKind::NotFound, "")))?;
                    Ok(())
                }

                async fn get_template(&self, id: TemplateId) -> Result<Template> {
                    let row = sqlx::query("SELECT * FROM templates WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("template"))?;
                    template_from(&row)
                }

                async fn list_templates(&self, page: Page) -> Result<Paged<Template>> {
                    let (limit, offset) = limit_offset(page);
                    let rows = sqlx::query("SELECT * FROM templates ORDER BY name LIMIT $1 OFFSET $2")
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM templates")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged {
                        items: rows.iter().map(template_from).collect::<Result<_>>()?,
                        total: to_u64(col(&total, "n")?),
                    })
                }

                async fn update_template(&self, t: &Template) -> Result<Template> {
                    let done = sqlx::query(
                        "UPDATE templates SET name = $1, body = $2, version = version + 1 WHERE id = $3 AND version = $4",
                    )
                    .bind(&t.name)
                    .bind(template_body(t))
                    .bind(t.id.0)
                    .bind(t.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "template name is taken", (ErrorKind::NotFound, "")))?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "templates", t.id.0, "template").await);
                    }
                    Ok(Template { version: t.version + 1, ..t.clone() })
                }

                async fn delete_template(&self, id: TemplateId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM templates WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_err(e, "", (ErrorKind::Conflict, "servers still use this template")))?;
                    if done.rows_affected() == 0 { Err(Error::not_found("template")) } else { Ok(()) }
                }
            }

            async fn write_allocations(tx: &mut sqlx::Transaction<'_, Db>, s: &Server) -> Result<()> {
                sqlx::query("DELETE FROM allocations WHERE server_id = $1")
                    .bind(s.id.0)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
                for a in &s.allocations {
                    sqlx::query("INSERT INTO allocations (node_id, ip, port, server_id) VALUES ($1, $2, $3, $4)")
                        .bind(s.node_id.0)
                        .bind(&a.ip)
                        .bind(i64::from(a.port))
                        .bind(s.id.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| {
                            map_err(e, "an allocation is already used on this node", (ErrorKind::NotFound, "node not found"))
                        })?;
                }
                Ok(())
            }

            #[async_trait]
            impl ServerStore for $store {
                async fn create_server(&self, s: &Server) -> Result<()> {
                    let mut tx = self.write_tx().await?;
                    for (table, id, what) in
                        [("users", s.owner_id.0, "user"), ("nodes", s.node_id.0, "node"), ("templates", s.template_id.0, "template")]
                    {
                        let sql = format!("SELECT 1 FROM {table} WHERE id = $1");
                        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        if found.is_none() {
                            return Err(Error::not_found(what));
                        }
                    }
                    sqlx::query(
                        "INSERT INTO servers (id, owner_id, node_id, template_id, state, memory_mb, disk_mb, body, \
                         created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(s.id.0)
                    .bind(s.owner_id.0)
                    .bind(s.node_id.0)
                    .bind(s.template_id.0)
                    .bind(s.state.as_str())
                    .bind(to_i64(s.limits.memory_mb))
                    .bind(to_i64(s.limits.disk_mb))
                    .bind(server_body(s))
                    .bind(s.created_at)
                    .bind(s.updated_at)
                    .bind(s.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(e, "server id exists", (ErrorKind::NotFound, "owner, node or template not found")))?;
                    write_allocations(&mut tx, s).await?;
                    tx.commit().await.map_err(db_err)
                }

                async fn get_server(&self, id: ServerId) -> Result<Server> {
                    let row = sqlx::query("SELECT * FROM servers WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("server"))?;
                    server_from(&row)
                }

                async fn list_servers(&self, f: &ServerFilter, page: Page) -> Result<Paged<Server>> {
                    const WHERE: &str = "WHERE ($1 IS NULL OR node_id = $1) AND ($2 IS NULL OR owner_id = $2) \
                         AND ($3 IS NULL OR owner_id = $3 OR EXISTS \
                         (SELECT 1 FROM server_access a WHERE a.server_id = servers.id AND a.user_id = $3))";
                    let (limit, offset) = limit_offset(page);
                    let sql = format!("SELECT * FROM servers {WHERE} ORDER BY created_at, id LIMIT $4 OFFSET $5");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(f.node_id.map(|x| x.0))
                        .bind(f.owner_id.map(|x| x.0))
                        .bind(f.visible_to.map(|x| x.0))
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let sql = format!("SELECT COUNT(*) AS n FROM servers {WHERE}");
                    let total = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(f.node_id.map(|x| x.0))
                        .bind(f.owner_id.map(|x| x.0))
                        .bind(f.visible_to.map(|x| x.0))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(server_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn update_server(&self, s: &Server) -> Result<Server> {
                    let mut tx = self.write_tx().await?;
                    let done = sqlx::query(
                        "UPDATE servers SET node_id = $1, state = $2, memory_mb = $3, disk_mb = $4, body = $5, \
                         updated_at = $6, version = version + 1 WHERE id = $7 AND version = $8",
                    )
                    .bind(s.node_id.0)
                    .bind(s.state.as_str())
                    .bind(to_i64(s.limits.memory_mb))
                    .bind(to_i64(s.limits.disk_mb))
                    .bind(server_body(s))
                    .bind(s.updated_at)
                    .bind(s.id.0)
                    .bind(s.version)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(e, "", (ErrorKind::NotFound, "node not found")))?;
                    if done.rows_affected() == 0 {
                        drop(tx);
                        return Err(cas_failure(&self.pool, "servers", s.id.0, "server").await);
                    }
                    write_allocations(&mut tx, s).await?;
                    tx.commit().await.map_err(db_err)?;
                    Ok(Server { version: s.version + 1, ..s.clone() })
                }

                async fn delete_server(&self, id: ServerId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM servers WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("server")) } else { Ok(()) }
                }

                async fn node_usage(&self, node: NodeId) -> Result<NodeUsage> {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS mem, \
                         CAST(COALESCE(SUM(disk_mb), 0) AS BIGINT) AS disk \
                         FROM servers WHERE node_id = $1",
                    )
                    .bind(node.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(NodeUsage {
                        servers: to_u64(col(&row, "n")?),
                        memory_mb: to_u64(col(&row, "mem")?),
                        disk_mb: to_u64(col(&row, "disk")?),
                    })
                }

                async fn put_access(&self, a: &ServerAccess) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO server_access (server_id, user_id, permissions, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (server_id, user_id) DO UPDATE SET permissions = excluded.permissions",
                    )
                    .bind(a.server_id.0)
                    .bind(a.user_id.0)
                    .bind(Json(&a.permissions))
                    .bind(a.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "", (ErrorKind::NotFound, "server or user not found")))?;
                    Ok(())
                }

                async fn get_access(&self, server: ServerId, user: UserId) -> Result<Option<ServerAccess>> {
                    let row = sqlx::query("SELECT * FROM server_access WHERE server_id = $1 AND user_id = $2")
                        .bind(server.0)
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(access_from).transpose()
                }

                async fn list_access(&self, server: ServerId) -> Result<Vec<ServerAccess>> {
                    let rows = sqlx::query("SELECT * FROM server_access WHERE server_id = $1 ORDER BY created_at, user_id")
                        .bind(server.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(access_from).collect()
                }

                async fn delete_access(&self, server: ServerId, user: UserId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM server_access WHERE server_id = $1 AND user_id = $2")
                        .bind(server.0)
                        .bind(user.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("server access")) } else { Ok(()) }
                }
            }

            #[async_trait]
            impl LogStore for $store {
                async fn append_logs(&self, lines: &[ServerLog]) -> Result<u64> {
                    if lines.is_empty() {
                        return Ok(0);
                    }
                    self.append_logs_impl(lines).await
                }

                async fn list_logs(&self, server: ServerId, q: &LogQuery) -> Result<Vec<ServerLog>> {
                    let limit = i64::from(Page::new(0, q.limit.unwrap_or(100)).effective_limit());
                    let rows = sqlx::query(
                        "SELECT * FROM server_logs WHERE server_id = $1 AND ($2 IS NULL OR stream = $2) \
                         AND ($3 IS NULL OR seq < $3) AND ($4 IS NULL OR seq > $4) ORDER BY seq DESC LIMIT $5",
                    )
                    .bind(server.0)
                    .bind(q.stream.map(|s| s.as_str()))
                    .bind(q.before)
                    .bind(q.after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(log_from).collect()
                }

                async fn prune_logs(&self, before: Timestamp) -> Result<u64> {
                    let done = sqlx::query("DELETE FROM server_logs WHERE at < $1")
                        .bind(before)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl AuditStore for $store {
                async fn append_audit(&self, e: &AuditLog) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO audit_logs (id, actor, user_id, action, target_type, target_id, success, details, \
                         ip, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(e.id.0)
                    .bind(Json(&e.actor))
                    .bind(e.user_id.map(|u| u.0))
                    .bind(&e.action)
                    .bind(&e.target_type)
                    .bind(&e.target_id)
                    .bind(e.success)
                    .bind(Json(&e.details))
                    .bind(&e.ip)
                    .bind(e.at)
                    .execute(&self.pool)
                    .await
                    .map_err(|err| map_err(err, "audit id exists", (ErrorKind::Internal, "")))?;
                    Ok(())
                }

                async fn query_audit(&self, q: &AuditQuery, page: Page) -> Result<Paged<AuditLog>> {
                    const WHERE: &str = "WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR action = $2) \
                         AND ($3 IS NULL OR action LIKE $3 ESCAPE '\\') AND ($4 IS NULL OR target_type = $4) \
                         AND ($5 IS NULL OR target_id = $5) AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7)";
                    let (exact, prefix) = match &q.action {
                        Some(a) if a.ends_with('.') => (None, Some(like_prefix(a))),
                        Some(a) => (Some(a.clone()), None),
                        None => (None, None),
                    };
                    let (limit, offset) = limit_offset(page);
                    macro_rules! bind_filter {
                        ($query:expr) => {
                            $query
                                .bind(q.user_id.map(|u| u.0))
                                .bind(exact.clone())
                                .bind(prefix.clone())
                                .bind(q.target_type.clone())
                                .bind(q.target_id.clone())
                                .bind(q.from)
                                .bind(q.to)
                        };
                    }
                    let sql = format!("SELECT * FROM audit_logs {WHERE} ORDER BY at DESC, id DESC LIMIT $8 OFFSET $9");
                    let rows = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql)))
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let sql = format!("SELECT COUNT(*) AS n FROM audit_logs {WHERE}");
                    let total = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql)))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(audit_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }
            }

            #[async_trait]
            impl ApiKeyStore for $store {
                async fn create_api_key(&self, k: &ApiKey) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO api_keys (id, name, prefix, secret_hash, user_id, scopes, rate_limit, \
                         rate_window_secs, expires_at, last_used_at, revoked, created_at, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    )
                    .bind(k.id.0)
                    .bind(&k.name)
                    .bind(&k.prefix)
                    .bind(&k.secret_hash)
                    .bind(k.user_id.0)
                    .bind(Json(&k.scopes))
                    .bind(k.rate_limit.map(i64::from))
                    .bind(i64::from(k.rate_window_secs))
                    .bind(k.expires_at)
                    .bind(k.last_used_at)
                    .bind(k.revoked)
                    .bind(k.created_at)
                    .bind(k.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the API key exists", (ErrorKind::NotFound, "user not found")))?;
                    Ok(())
                }

                async fn get_api_key(&self, id: ApiKeyId) -> Result<ApiKey> {
                    let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("API key"))?;
                    api_key_from(&row)
                }

                async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKey>> {
                    let row = sqlx::query("SELECT * FROM api_keys WHERE prefix = $1")
                        .bind(prefix)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                    row.as_ref().map(api_key_from).transpose()
                }

                async fn list_api_keys(&self, user: Option<UserId>, page: Page) -> Result<Paged<ApiKey>> {
                    let (limit, offset) = limit_offset(page);
                    let user = user.map(|u| u.0);
                    let rows = sqlx::query(
                        "SELECT * FROM api_keys WHERE ($1 IS NULL OR user_id = $1) \
                         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                    )
                    .bind(user)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE ($1 IS NULL OR user_id = $1)")
                        .bind(user)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(api_key_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn update_api_key(&self, k: &ApiKey) -> Result<ApiKey> {
                    let done = sqlx::query(
                        "UPDATE api_keys SET name = $1, scopes = $2, rate_limit = $3, rate_window_secs = $4, \
                         expires_at = $5, revoked = $6, version = version + 1 WHERE id = $7 AND version = $8",
                    )
                    .bind(&k.name)
                    .bind(Json(&k.scopes))
                    .bind(k.rate_limit.map(i64::from))
                    .bind(i64::from(k.rate_window_secs))
                    .bind(k.expires_at)
                    .bind(k.revoked)
                    .bind(k.id.0)
                    .bind(k.version)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "api_keys", k.id.0, "API key").await);
                    }
                    self.get_api_key(k.id).await
                }

                async fn touch_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()> {
                    let done = sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                        .bind(at)
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("API key")) } else { Ok(()) }
                }

                async fn delete_api_key(&self, id: ApiKeyId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("API key")) } else { Ok(()) }
                }
            }

            /// Planned tasks first by next firing, then unplanned ones.
            const TASK_ORDER: &str = "ORDER BY (next_run_at IS NULL), next_run_at, id";

            #[async_trait]
            impl TaskStore for $store {
                async fn create_task(&self, t: &ScheduledTask) -> Result<()> {
                    if !exists(&self.pool, "servers", t.server_id.0).await? {
                        return Err(Error::not_found("server"));
                    }
                    sqlx::query(
                        "INSERT INTO tasks (id, server_id, name, cron, timezone, action, enabled, catch_up, created_by, \
                         last_run_at, next_run_at, run_count, last_result, last_error, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    )
                    .bind(t.id.0)
                    .bind(t.server_id.0)
                    .bind(&t.name)
                    .bind(&t.cron)
                    .bind(&t.timezone)
                    .bind(Json(&t.action))
                    .bind(t.enabled)
                    .bind(Json(&t.catch_up))
                    .bind(t.created_by.0)
                    .bind(t.last_run_at)
                    .bind(t.next_run_at)
                    .bind(to_i64(t.run_count))
                    .bind(&t.last_result)
                    .bind(&t.last_error)
                    .bind(t.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the task exists", (ErrorKind::NotFound, "user not found")))?;
                    Ok(())
                }

                async fn get_task(&self, id: TaskId) -> Result<ScheduledTask> {
                    let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("task"))?;
                    task_from(&row)
                }

                async fn list_tasks(&self, server: Option<ServerId>, page: Page) -> Result<Paged<ScheduledTask>> {
                    let (limit, offset) = limit_offset(page);
                    let server = server.map(|s| s.0);
                    let sql = format!("SELECT * FROM tasks WHERE ($1 IS NULL OR server_id = $1) {TASK_ORDER} LIMIT $2 OFFSET $3");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(server)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM tasks WHERE ($1 IS NULL OR server_id = $1)")
                        .bind(server)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(task_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn due_tasks(&self, now: Timestamp, limit: u32) -> Result<Vec<ScheduledTask>> {
                    let sql = format!("SELECT * FROM tasks WHERE enabled = TRUE AND next_run_at <= $1 {TASK_ORDER} LIMIT $2");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(task_from).collect()
                }

                async fn update_task(&self, t: &ScheduledTask) -> Result<ScheduledTask> {
                    let done = sqlx::query(
                        "UPDATE tasks SET name = $1, cron = $2, timezone = $3, action = $4, enabled = $5, catch_up = $6, \
                         last_run_at = $7, next_run_at = $8, run_count = $9, last_result = $10, last_error = $11, \
                         version = version + 1 WHERE id = $12 AND version = $13",
                    )
                    .bind(&t.name)
                    .bind(&t.cron)
                    .bind(&t.timezone)
                    .bind(Json(&t.action))
                    .bind(t.enabled)
                    .bind(Json(&t.catch_up))
                    .bind(t.last_run_at)
                    .bind(t.next_run_at)
                    .bind(to_i64(t.run_count))
                    .bind(&t.last_result)
                    .bind(&t.last_error)
                    .bind(t.id.0)
                    .bind(t.version)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "tasks", t.id.0, "task").await);
                    }
                    self.get_task(t.id).await
                }

                async fn delete_task(&self, id: TaskId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM tasks WHERE id = $1").bind(id.0).execute(&self.pool).await.map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("task")) } else { Ok(()) }
                }
            }

            /// The summary columns of a roll-up, and how they update on a re-run.
            const ROLLUP_INSERT: &str = "INSERT INTO metrics_rollups (server_id, period, start, samples, cpu_avg, \
                cpu_max, memory_avg_bytes, memory_max_bytes, disk_max_bytes, rx_bytes, tx_bytes) ";
            const ROLLUP_UPSERT: &str = " ON CONFLICT (server_id, period, start) DO UPDATE SET \
                samples = excluded.samples, cpu_avg = excluded.cpu_avg, cpu_max = excluded.cpu_max, \
                memory_avg_bytes = excluded.memory_avg_bytes, memory_max_bytes = excluded.memory_max_bytes, \
                disk_max_bytes = excluded.disk_max_bytes, rx_bytes = excluded.rx_bytes, tx_bytes = excluded.tx_bytes";

            #[async_trait]
            impl MetricsStore for $store {
                async fn append_metrics(&self, samples: &[ServerMetrics]) -> Result<u64> {
                    let mut tx = self.write_tx().await?;
                    let mut new = 0;
                    for m in samples {
                        let done = sqlx::query(
                            "INSERT INTO server_metrics (server_id, at, cpu_percent, memory_bytes, memory_limit_bytes, \
                             rx_bytes, tx_bytes, disk_bytes) SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                             WHERE EXISTS (SELECT 1 FROM servers WHERE id = $1) ON CONFLICT (server_id, at) DO NOTHING",
                        )
                        .bind(m.server_id.0)
                        .bind(m.at)
                        .bind(m.cpu_percent)
                        .bind(to_i64(m.memory_bytes))
                        .bind(to_i64(m.memory_limit_bytes))
                        .bind(to_i64(m.rx_bytes))
                        .bind(to_i64(m.tx_bytes))
                        .bind(to_i64(m.disk_bytes))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                        new += done.rows_affected();
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(new)
                }

                async fn list_metrics(&self, server: ServerId, from: Timestamp, to: Timestamp, limit: u32) -> Result<Vec<ServerMetrics>> {
                    let rows = sqlx::query(
                        "SELECT * FROM server_metrics WHERE server_id = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT $4",
                    )
                    .bind(server.0)
                    .bind(from)
                    .bind(to)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(metrics_from).collect()
                }

                async fn roll_up(&self, period: Period, start: Timestamp) -> Result<u64> {
                    let select = match period {
                        Period::Hour => "SELECT server_id, $1, $2, COUNT(*), AVG(cpu_percent), MAX(cpu_percent), \
                            AVG(CAST(memory_bytes AS DOUBLE PRECISION)), MAX(memory_bytes), MAX(disk_bytes), \
                            MAX(rx_bytes), MAX(tx_bytes) FROM server_metrics WHERE at >= $2 AND at < $3 GROUP BY server_id",
                        Period::Day => "SELECT server_id, $1, $2, CAST(SUM(samples) AS BIGINT), \
                            SUM(cpu_avg * samples) / CAST(SUM(samples) AS DOUBLE PRECISION), MAX(cpu_max), \
                            SUM(memory_avg_bytes * samples) / CAST(SUM(samples) AS DOUBLE PRECISION), \
                            MAX(memory_max_bytes), MAX(disk_max_bytes), MAX(rx_bytes), MAX(tx_bytes) FROM metrics_rollups \
                            WHERE period = 'hour' AND start >= $2 AND start < $3 GROUP BY server_id",
                    };
                    let sql = format!("{ROLLUP_INSERT}{select}{ROLLUP_UPSERT}");
                    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(period.as_str())
                        .bind(start)
                        .bind(start + period.length())
                        .execute(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected())
                }

                async fn list_rollups(&self, server: ServerId, period: Period, from: Timestamp, to: Timestamp) -> Result<Vec<MetricsRollup>> {
                    let rows = sqlx::query(
                        "SELECT * FROM metrics_rollups WHERE server_id = $1 AND period = $2 AND start >= $3 AND start < $4 \
                         ORDER BY start",
                    )
                    .bind(server.0)
                    .bind(period.as_str())
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    rows.iter().map(|r| rollup_from(r, period)).collect()
                }

                async fn prune_metrics(&self, samples_before: Timestamp, hours_before: Timestamp, days_before: Timestamp) -> Result<u64> {
                    let mut tx = self.write_tx().await?;
                    let mut gone = 0;
                    let samples = sqlx::query("DELETE FROM server_metrics WHERE at < $1")
                        .bind(samples_before)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    gone += samples.rows_affected();
                    for (period, before) in [(Period::Hour, hours_before), (Period::Day, days_before)] {
                        let done = sqlx::query("DELETE FROM metrics_rollups WHERE period = $1 AND start < $2")
                            .bind(period.as_str())
                            .bind(before)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        gone += done.rows_affected();
                    }
                    tx.commit().await.map_err(db_err)?;
                    Ok(gone)
                }
            }

            const ALERT_FILTER: &str = "WHERE ($1 IS NULL OR resolved = $1) AND ($2 IS NULL OR server_id = $2) \
                AND ($3 IS NULL OR node_id = $3) AND ($4 IS NULL OR kind = $4) AND ($5 IS NULL OR severity = $5) \
                AND ($6 IS NULL OR server_id IN (SELECT id FROM servers WHERE owner_id = $6 \
                UNION SELECT server_id FROM server_access WHERE user_id = $6))";

            #[async_trait]
            impl AlertStore for $store {
                async fn create_alert_rule(&self, r: &AlertRule) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO alert_rules (id, name, condition, severity, webhooks, enabled, created_by, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(r.id.0)
                    .bind(&r.name)
                    .bind(Json(&r.condition))
                    .bind(severity_str(r.severity))
                    .bind(Json(StoredWebhook::from_targets(&r.webhooks)))
                    .bind(r.enabled)
                    .bind(r.created_by.0)
                    .bind(r.version)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the alert rule exists", (ErrorKind::NotFound, "user not found")))?;
                    Ok(())
                }

                async fn get_alert_rule(&self, id: AlertRuleId) -> Result<AlertRule> {
                    let row = sqlx::query("SELECT * FROM alert_rules WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("alert rule"))?;
                    alert_rule_from(&row)
                }

                async fn list_alert_rules(&self) -> Result<Vec<AlertRule>> {
                    let rows = sqlx::query("SELECT * FROM alert_rules ORDER BY name, id")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(alert_rule_from).collect()
                }

                async fn update_alert_rule(&self, r: &AlertRule) -> Result<AlertRule> {
                    let done = sqlx::query(
                        "UPDATE alert_rules SET name = $1, condition = $2, severity = $3, webhooks = $4, enabled = $5, \
                         version = version + 1 WHERE id = $6 AND version = $7",
                    )
                    .bind(&r.name)
                    .bind(Json(&r.condition))
                    .bind(severity_str(r.severity))
                    .bind(Json(StoredWebhook::from_targets(&r.webhooks)))
                    .bind(r.enabled)
                    .bind(r.id.0)
                    .bind(r.version)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(cas_failure(&self.pool, "alert_rules", r.id.0, "alert rule").await);
                    }
                    self.get_alert_rule(r.id).await
                }

                async fn delete_alert_rule(&self, id: AlertRuleId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id.0).execute(&self.pool).await.map_err(db_err)?;
                    if done.rows_affected() == 0 { Err(Error::not_found("alert rule")) } else { Ok(()) }
                }

                async fn create_alert(&self, a: &Alert) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO alerts (id, rule_id, server_id, node_id, kind, severity, message, resolved, created_at, \
                         resolved_at, resolved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(a.id.0)
                    .bind(a.rule_id.map(|r| r.0))
                    .bind(a.server_id.map(|s| s.0))
                    .bind(a.node_id.map(|n| n.0))
                    .bind(&a.kind)
                    .bind(severity_str(a.severity))
                    .bind(&a.message)
                    .bind(a.resolved)
                    .bind(a.created_at)
                    .bind(a.resolved_at)
                    .bind(a.resolved_by.map(|u| u.0))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the alert exists", (ErrorKind::NotFound, "alert rule not found")))?;
                    Ok(())
                }

                async fn get_alert(&self, id: AlertId) -> Result<Alert> {
                    let row = sqlx::query("SELECT * FROM alerts WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("alert"))?;
                    alert_from(&row)
                }

                async fn list_alerts(&self, f: &AlertFilter, page: Page) -> Result<Paged<Alert>> {
                    let (limit, offset) = limit_offset(page);
                    macro_rules! bind_filter {
                        ($q:expr) => {
                            $q.bind(f.resolved)
                                .bind(f.server_id.map(|s| s.0))
                                .bind(f.node_id.map(|n| n.0))
                                .bind(f.kind.as_deref())
                                .bind(f.severity.map(severity_str))
                                .bind(f.visible_to.map(|u| u.0))
                        };
                    }
                    let sql = format!("SELECT * FROM alerts {ALERT_FILTER} ORDER BY created_at DESC, id DESC LIMIT $7 OFFSET $8");
                    let rows = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql)))
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    let sql = format!("SELECT COUNT(*) AS n FROM alerts {ALERT_FILTER}");
                    let total = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_one(&self.pool).await.map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(alert_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }

                async fn resolve_alert(&self, id: AlertId, by: Option<UserId>, at: Timestamp) -> Result<Alert> {
                    let done = sqlx::query(
                        "UPDATE alerts SET resolved = TRUE, resolved_at = $1, resolved_by = $2 WHERE id = $3 AND resolved = FALSE",
                    )
                    .bind(at)
                    .bind(by.map(|u| u.0))
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        self.get_alert(id).await?;
                        return Err(Error::conflict("the alert is already resolved"));
                    }
                    self.get_alert(id).await
                }

                async fn last_alert(&self, rule: AlertRuleId, server: Option<ServerId>, node: Option<NodeId>) -> Result<Option<Alert>> {
                    let row = sqlx::query(
                        "SELECT * FROM alerts WHERE rule_id = $1 AND (server_id = $2 OR ($2 IS NULL AND server_id IS NULL)) \
                         AND (node_id = $3 OR ($3 IS NULL AND node_id IS NULL)) ORDER BY created_at DESC, id DESC LIMIT 1",
                    )
                    .bind(rule.0)
                    .bind(server.map(|s| s.0))
                    .bind(node.map(|n| n.0))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                    row.as_ref().map(alert_from).transpose()
                }

                async fn append_delivery(&self, d: &WebhookDelivery) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO webhook_deliveries (id, alert_id, url, event, delivered, attempts, status, error, at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(d.id.0)
                    .bind(d.alert_id.map(|a| a.0))
                    .bind(&d.url)
                    .bind(&d.event)
                    .bind(d.delivered)
                    .bind(i64::from(d.attempts))
                    .bind(d.status.map(i64::from))
                    .bind(&d.error)
                    .bind(d.at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the delivery exists", (ErrorKind::NotFound, "alert not found")))?;
                    Ok(())
                }

                async fn list_deliveries(&self, alert: Option<AlertId>, page: Page) -> Result<Paged<WebhookDelivery>> {
                    let (limit, offset) = limit_offset(page);
                    let alert = alert.map(|a| a.0);
                    let rows = sqlx::query(
                        "SELECT * FROM webhook_deliveries WHERE ($1 IS NULL OR alert_id = $1) \
                         ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3",
                    )
                    .bind(alert)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                    let total = sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE ($1 IS NULL OR alert_id = $1)")
                        .bind(alert)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                    Ok(Paged { items: rows.iter().map(delivery_from).collect::<Result<_>>()?, total: to_u64(col(&total, "n")?) })
                }
            }

            fn backup_from(row: &DbRow) -> Result<Backup> {
                Ok(Backup {
                    id: BackupId(col(row, "id")?),
                    server_id: ServerId(col(row, "server_id")?),
                    node_id: NodeId(col(row, "node_id")?),
                    name: col(row, "name")?,
                    status: enum_from("status", &col::<String>(row, "status")?)?,
                    storage: enum_from("storage", &col::<String>(row, "storage")?)?,
                    size_bytes: to_u64(col(row, "size_bytes")?),
                    checksum: col(row, "checksum")?,
                    locked: col(row, "locked")?,
                    error: col(row, "error")?,
                    created_at: col(row, "created_at")?,
                    completed_at: col(row, "completed_at")?,
                })
            }

            #[async_trait]
            impl BackupStore for $store {
                async fn create_backup(&self, b: &Backup) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO backups (id, server_id, node_id, name, status, storage, size_bytes, checksum, locked, \
                         error, created_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(b.id.0)
                    .bind(b.server_id.0)
                    .bind(b.node_id.0)
                    .bind(&b.name)
                    .bind(enum_str(&b.status))
                    .bind(enum_str(&b.storage))
                    .bind(to_i64(b.size_bytes))
                    .bind(&b.checksum)
                    .bind(b.locked)
                    .bind(&b.error)
                    .bind(b.created_at)
                    .bind(b.completed_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err(e, "the backup exists", (ErrorKind::NotFound, "server not found")))?;
                    Ok(())
                }

                async fn get_backup(&self, id: BackupId) -> Result<Backup> {
                    let row = sqlx::query("SELECT * FROM backups WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| Error::not_found("backup"))?;
                    backup_from(&row)
                }

                async fn update_backup(&self, b: &Backup) -> Result<()> {
                    let done = sqlx::query(
                        "UPDATE backups SET name = $1, status = $2, size_bytes = $3, checksum = $4, locked = $5, \
                         error = $6, completed_at = $7, node_id = $8 WHERE id = $9",
                    )
                    .bind(&b.name)
                    .bind(enum_str(&b.status))
                    .bind(to_i64(b.size_bytes))
                    .bind(&b.checksum)
                    .bind(b.locked)
                    .bind(&b.error)
                    .bind(b.completed_at)
                    .bind(b.node_id.0)
                    .bind(b.id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(Error::not_found("backup"));
                    }
                    Ok(())
                }

                async fn list_backups(&self, server: ServerId) -> Result<Vec<Backup>> {
                    let rows = sqlx::query("SELECT * FROM backups WHERE server_id = $1 ORDER BY created_at DESC, id DESC")
                        .bind(server.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db_err)?;
                    rows.iter().map(backup_from).collect()
                }

                async fn delete_backup(&self, id: BackupId) -> Result<()> {
                    let done = sqlx::query("DELETE FROM backups WHERE id = $1").bind(id.0).execute(&self.pool).await.map_err(db_err)?;
                    if done.rows_affected() == 0 {
                        return Err(Error::not_found("backup"));
                    }
                    Ok(())
                }

                async fn backup_usage(&self) -> Result<catalyst_core::model::BackupUsage> {
                    let row = sqlx::query(
                        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS bytes FROM backups WHERE status <> $1",
                    )
                    .bind(enum_str(&catalyst_core::model::BackupStatus::Failed))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                    Ok(catalyst_core::model::BackupUsage {
                        backups: to_u64(col::<i64>(&row, "n")?),
                        bytes: to_u64(col::<i64>(&row, "bytes")?),
                    })
                }
            }
        }
    };
}
