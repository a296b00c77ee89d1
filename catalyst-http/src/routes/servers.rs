//! `/api/servers`: CRUD, power actions, console command, logs, crash counter, suspension,
//! reinstall and subusers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::{ServerId, UserId};
use catalyst_core::model::{LogQuery, LogStream, Paged, Server, ServerAccess, ServerLog};
use catalyst_runtime::control::{GrantAccess, MetricsQuery, MetricsSeries, NewServer, Resolution, ServerPatch};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, update_server, delete_server))
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(kill))
        .routes(routes!(reinstall))
        .routes(routes!(suspend))
        .routes(routes!(unsuspend))
        .routes(routes!(reset_crash_count))
        .routes(routes!(command))
        .routes(routes!(logs))
        .routes(routes!(metrics))
        .routes(routes!(list_access, grant_access))
        .routes(routes!(revoke_access))
        .routes(routes!(transfer))
}

/// Where to move a server.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TransferInput {
    /// The target node.
    node_id: catalyst_core::id::NodeId,
}

/// Move the server to another node (`server.transfer`): stopped, archived, copied with its
/// node-local backups, restored and switched; a failure rolls back to the source. Progress
/// arrives as `transfer_progress` events and in the server's log.
#[utoipa::path(post, path = "/api/servers/{id}/transfer", tag = "servers", params(("id" = ServerId, Path)), request_body = TransferInput, responses((status = 202, body = Server)))]
async fn transfer(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<TransferInput>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    Ok((StatusCode::ACCEPTED, Json(s.catalyst.transfer_server(&who, id, input.node_id).await?)))
}

/// The servers the caller may see: all of them with a global `server.read`, else the ones
/// they own or were given access to.
#[utoipa::path(get, path = "/api/servers", tag = "servers", params(PageQuery), responses((status = 200, body = Paged<Server>)))]
async fn list_servers(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<Server>>> {
    Ok(Json(s.catalyst.list_servers(&who, q.page()).await?))
}

/// Create a server on a node with room and install it (`server.create`).
#[utoipa::path(post, path = "/api/servers", tag = "servers", request_body = NewServer, responses((status = 201, body = Server)))]
async fn create_server(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewServer>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_server(&who, input).await?)))
}

/// One server (`server.read`).
#[utoipa::path(get, path = "/api/servers/{id}", tag = "servers", params(("id" = ServerId, Path)), responses((status = 200, body = Server)))]
async fn get_server(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<ServerId>) -> ApiResult<Json<Server>> {
    Ok(Json(s.catalyst.get_server(&who, id).await?))
}

/// Change a server (`server.update`); limits, allocations and the restart policy need a global
/// grant.
#[utoipa::path(put, path = "/api/servers/{id}", tag = "servers", params(("id" = ServerId, Path)), request_body = ServerPatch, responses((status = 200, body = Server)))]
async fn update_server(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(patch): Body<ServerPatch>,
) -> ApiResult<Json<Server>> {
    Ok(Json(s.catalyst.update_server(&who, id, patch).await?))
}

/// `?force=true`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Operators: delete even when the node is away (the record turns `deleting`, its
    /// allocations and external id are released, and the node finishes when it reconnects);
    /// forcing a `deleting` server drops the record for good.
    #[serde(default)]
    force: bool,
}

/// Delete a server (`server.delete`): the node kills and removes it, then the record goes.
#[utoipa::path(delete, path = "/api/servers/{id}", tag = "servers", params(("id" = ServerId, Path), DeleteQuery), responses((status = 204, description = "Deleted")))]
async fn delete_server(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    if q.force {
        s.catalyst.force_delete_server(&who, id).await?;
    } else {
        s.catalyst.delete_server(&who, id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! power {
    ($($name:ident => $method:ident, $path:literal, $doc:literal;)*) => {$(
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "servers", params(("id" = ServerId, Path)), responses((status = 202, description = "Accepted: the node is acting on it", body = Server)))]
        async fn $name(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<ServerId>) -> ApiResult<(StatusCode, Json<Server>)> {
            Ok((StatusCode::ACCEPTED, Json(s.catalyst.$method(&who, id).await?)))
        }
    )*};
}

power! {
    start => start_server, "/api/servers/{id}/start", "Start (`server.start`).";
    stop => stop_server, "/api/servers/{id}/stop", "Stop gracefully with the template's stop action (`server.stop`).";
    restart => restart_server, "/api/servers/{id}/restart", "Stop, then start (`server.start` and `server.stop`).";
    kill => kill_server, "/api/servers/{id}/kill", "Kill at once (`server.stop`).";
    reinstall => reinstall_server, "/api/servers/{id}/reinstall", "Run the install script again (`server.install`).";
    suspend => suspend_server, "/api/servers/{id}/suspend", "Stop and refuse starts until unsuspended (`server.suspend`, operators).";
    unsuspend => unsuspend_server, "/api/servers/{id}/unsuspend", "Lift a suspension (`server.suspend`, operators).";
}

/// Forget the crash history that the restart policy counts (`server.update`).
#[utoipa::path(post, path = "/api/servers/{id}/reset-crash-count", tag = "servers", params(("id" = ServerId, Path)), responses((status = 200, body = Server)))]
async fn reset_crash_count(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
) -> ApiResult<Json<Server>> {
    Ok(Json(s.catalyst.reset_crash_count(&who, id).await?))
}

/// A console command.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CommandInput {
    /// One line, at most 4096 bytes.
    #[schema(max_length = 4096, pattern = r"^[^\r\n\x00]*$")]
    command: String,
}

/// Write a line to the server's console (`console.write`).
#[utoipa::path(post, path = "/api/servers/{id}/command", tag = "servers", params(("id" = ServerId, Path)), request_body = CommandInput, responses((status = 202, description = "Sent")))]
async fn command(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<CommandInput>,
) -> ApiResult<StatusCode> {
    s.catalyst.send_command(&who, id, &input.command).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `?stream=&before=&after=&limit=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogsQuery {
    /// Only this stream.
    #[serde(default)]
    stream: Option<LogStream>,
    /// Lines with a sequence number below this (paging backwards).
    #[serde(default)]
    before: Option<i64>,
    /// Lines with a sequence number above this (resuming).
    #[serde(default)]
    after: Option<i64>,
    /// At most this many lines (1-1000).
    #[serde(default)]
    limit: Option<u32>,
}

/// Stored console lines, newest last (`console.read`).
#[utoipa::path(get, path = "/api/servers/{id}/logs", tag = "servers", params(("id" = ServerId, Path), LogsQuery), responses((status = 200, body = Vec<ServerLog>)))]
async fn logs(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Json<Vec<ServerLog>>> {
    let query = LogQuery { stream: q.stream, before: q.before, after: q.after, limit: q.limit };
    Ok(Json(s.catalyst.server_logs(&who, id, &query).await?))
}

/// `?resolution=raw|hour|day&from=&to=&limit=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct MetricsParams {
    /// Every sample (default), or hourly or daily roll-ups.
    #[serde(default)]
    resolution: Resolution,
    /// Start (RFC 3339; default an hour, a week or 90 days before `to`).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<catalyst_core::model::Timestamp>,
    /// End, exclusive (default now).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<catalyst_core::model::Timestamp>,
    /// Most raw samples (default 1000).
    #[serde(default)]
    limit: Option<u32>,
}

/// Resource samples or their hourly/daily roll-ups, oldest first (`server.read`).
#[utoipa::path(get, path = "/api/servers/{id}/metrics", tag = "servers", params(("id" = ServerId, Path), MetricsParams), responses((status = 200, body = MetricsSeries)))]
async fn metrics(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<MetricsParams>,
) -> ApiResult<Json<MetricsSeries>> {
    let query = MetricsQuery { resolution: q.resolution, from: q.from, to: q.to, limit: q.limit };
    Ok(Json(s.catalyst.server_metrics(&who, id, &query).await?))
}

/// Subusers of a server and what they hold (`server.read`).
#[utoipa::path(get, path = "/api/servers/{id}/access", tag = "access", params(("id" = ServerId, Path)), responses((status = 200, body = Vec<ServerAccess>)))]
async fn list_access(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
) -> ApiResult<Json<Vec<ServerAccess>>> {
    Ok(Json(s.catalyst.list_access(&who, id).await?))
}

/// Give a user access to a server, never more than the granter holds.
#[utoipa::path(post, path = "/api/servers/{id}/access", tag = "access", params(("id" = ServerId, Path)), request_body = GrantAccess, responses((status = 201, body = ServerAccess)))]
async fn grant_access(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<GrantAccess>,
) -> ApiResult<(StatusCode, Json<ServerAccess>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.grant_access(&who, id, input).await?)))
}

/// Take a user's access away; their open sockets on it close at once.
#[utoipa::path(delete, path = "/api/servers/{id}/access/{user_id}", tag = "access", params(("id" = ServerId, Path), ("user_id" = UserId, Path)), responses((status = 204, description = "Revoked")))]
async fn revoke_access(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, user)): Ids<(ServerId, UserId)>,
) -> ApiResult<StatusCode> {
    s.catalyst.revoke_access(&who, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}
