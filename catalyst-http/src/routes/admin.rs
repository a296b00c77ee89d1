//! `/api/admin`: API keys, the audit log, and operator views.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::{ApiKeyId, UserId};
use catalyst_core::model::{ApiKey, AuditLog, AuditQuery, Paged, Server, Timestamp, User};
use catalyst_runtime::control::{
    AdminHealth, AdminStats, ApiKeyPatch, CreatedApiKey, NewApiKey, NewUser, NodeOverview,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(update_api_key, delete_api_key))
        .routes(routes!(audit_logs))
        .routes(routes!(stats))
        .routes(routes!(users, create_user))
        .routes(routes!(nodes))
        .routes(routes!(servers))
        .routes(routes!(health))
        .routes(routes!(prometheus))
}

/// `?user_id=&action=&target_type=&target_id=&from=&to=&offset=&limit=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// Only this user's actions.
    #[serde(default)]
    user_id: Option<UserId>,
    /// An action (`server.start`), or a prefix ending in `.` (`server.`).
    #[serde(default)]
    action: Option<String>,
    /// Only this kind of target (`server`, `user`, `api_key`, …).
    #[serde(default)]
    target_type: Option<String>,
    /// Only this target.
    #[serde(default)]
    target_id: Option<String>,
    /// At or after (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// Before (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// Rows to skip.
    #[serde(default)]
    offset: Option<u64>,
    /// Rows to return (1-500, default 50).
    #[serde(default)]
    limit: Option<u32>,
}

/// The audit trail, newest first (`admin.audit-logs`).
#[utoipa::path(get, path = "/api/admin/audit-logs", tag = "admin", params(AuditParams), responses((status = 200, body = Paged<AuditLog>)))]
async fn audit_logs(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<AuditParams>,
) -> ApiResult<Json<Paged<AuditLog>>> {
    let query = AuditQuery {
        user_id: q.user_id,
        action: q.action,
        target_type: q.target_type,
        target_id: q.target_id,
        from: q.from,
        to: q.to,
    };
    let page = PageQuery { offset: q.offset, limit: q.limit }.page();
    Ok(Json(s.catalyst.audit_logs(&who, &query, page).await?))
}

/// Counts of users, servers, nodes (and how many are online), locations, templates
/// (`admin.stats`).
#[utoipa::path(get, path = "/api/admin/stats", tag = "admin", responses((status = 200, body = AdminStats)))]
async fn stats(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<AdminStats>> {
    Ok(Json(s.catalyst.admin_stats(&who).await?))
}

/// Every user (`admin.users`).
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", params(PageQuery), responses((status = 200, body = Paged<User>)))]
async fn users(State(s): State<AppState>, Auth(who): Auth, Query(q): Query<PageQuery>) -> ApiResult<Json<Paged<User>>> {
    Ok(Json(s.catalyst.list_users(&who, q.page()).await?))
}

/// Create a user (`admin.users`), whether or not registration is open: how a billing panel
/// creates its customers.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = NewUser, responses((status = 201, body = User)))]
async fn create_user(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_user(&who, input).await?)))
}

/// Every node with its resource totals and connection (`admin.read`).
#[utoipa::path(get, path = "/api/admin/nodes", tag = "admin", responses((status = 200, body = Vec<NodeOverview>)))]
async fn nodes(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Vec<NodeOverview>>> {
    Ok(Json(s.catalyst.admin_nodes(&who).await?))
}

/// Every server on every node (`admin.read`).
#[utoipa::path(get, path = "/api/admin/servers", tag = "admin", params(PageQuery), responses((status = 200, body = Paged<Server>)))]
async fn servers(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<Server>>> {
    Ok(Json(s.catalyst.admin_servers(&who, q.page()).await?))
}

/// Database round trip and node connections (`admin.read`).
#[utoipa::path(get, path = "/api/admin/health", tag = "admin", responses((status = 200, body = AdminHealth)))]
async fn health(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<AdminHealth>> {
    Ok(Json(s.catalyst.admin_health(&who).await?))
}

/// Every API key, newest first (`apikey.read`). Secrets are never shown again.
#[utoipa::path(get, path = "/api/admin/api-keys", tag = "api-keys", params(PageQuery), responses((status = 200, body = Paged<ApiKey>)))]
async fn list_api_keys(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<ApiKey>>> {
    Ok(Json(s.catalyst.list_api_keys(&who, q.page()).await?))
}

/// Create a key acting for the caller with at most the given scopes (`apikey.create`). The
/// answer's `key` is the only copy of the secret.
#[utoipa::path(post, path = "/api/admin/api-keys", tag = "api-keys", request_body = NewApiKey, responses((status = 201, body = CreatedApiKey)))]
async fn create_api_key(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_api_key(&who, input).await?)))
}

/// Rename, rescope, re-limit or revoke a key (`apikey.update`); it applies to the next request.
#[utoipa::path(put, path = "/api/admin/api-keys/{id}", tag = "api-keys", params(("id" = ApiKeyId, Path)), request_body = ApiKeyPatch, responses((status = 200, body = ApiKey)))]
async fn update_api_key(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ApiKeyId>,
    Body(patch): Body<ApiKeyPatch>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(s.catalyst.update_api_key(&who, id, patch).await?))
}

/// Delete a key (`apikey.delete`).
#[utoipa::path(delete, path = "/api/admin/api-keys/{id}", tag = "api-keys", params(("id" = ApiKeyId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_api_key(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<ApiKeyId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_api_key(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The fleet in the Prometheus exposition format (`admin.stats`; scrape with an API key as a
/// bearer token): servers by state, nodes by connection, users, each server's latest sample.
#[utoipa::path(get, path = "/metrics", tag = "admin", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
async fn prometheus(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<impl axum::response::IntoResponse> {
    let text = s.catalyst.prometheus_metrics(&who).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text))
}
