//! `/api/servers`: CRUD, power actions, console command, logs, crash counter, suspension,
//! reinstall and subusers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use catalyst_core::id::{ServerId, UserId};
use catalyst_core::model::{LogQuery, LogStream, Paged, Server, ServerAccess, ServerLog};
use catalyst_runtime::control::{GrantAccess, NewServer, ServerPatch};

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{id}", get(one).put(update).delete(remove))
        .route("/{id}/start", post(start))
        .route("/{id}/stop", post(stop))
        .route("/{id}/restart", post(restart))
        .route("/{id}/kill", post(kill))
        .route("/{id}/reinstall", post(reinstall))
        .route("/{id}/suspend", post(suspend))
        .route("/{id}/unsuspend", post(unsuspend))
        .route("/{id}/reset-crash-count", post(reset_crash_count))
        .route("/{id}/command", post(command))
        .route("/{id}/logs", get(logs))
        .route("/{id}/access", get(list_access).post(grant_access))
        .route("/{id}/access/{user_id}", delete(revoke_access))
}

async fn list(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Paged<Server>>> {
    Ok(Json(s.catalyst.list_servers(&who, q.page()).await?))
}

async fn create(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewServer>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_server(&who, input).await?)))
}

async fn one(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<ServerId>) -> ApiResult<Json<Server>> {
    Ok(Json(s.catalyst.get_server(&who, id).await?))
}

async fn update(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(patch): Body<ServerPatch>,
) -> ApiResult<Json<Server>> {
    Ok(Json(s.catalyst.update_server(&who, id, patch).await?))
}

async fn remove(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<ServerId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_server(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! power {
    ($($name:ident => $method:ident),* $(,)?) => {$(
        async fn $name(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<ServerId>) -> ApiResult<(StatusCode, Json<Server>)> {
            Ok((StatusCode::ACCEPTED, Json(s.catalyst.$method(&who, id).await?)))
        }
    )*};
}

power! {
    start => start_server,
    stop => stop_server,
    restart => restart_server,
    kill => kill_server,
    reinstall => reinstall_server,
    suspend => suspend_server,
    unsuspend => unsuspend_server,
}

async fn reset_crash_count(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
) -> ApiResult<Json<Server>> {
    Ok(Json(s.catalyst.reset_crash_count(&who, id).await?))
}

/// A console command.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandInput {
    command: String,
}

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
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    #[serde(default)]
    stream: Option<LogStream>,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn logs(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Json<Vec<ServerLog>>> {
    let query = LogQuery { stream: q.stream, before: q.before, after: q.after, limit: q.limit };
    Ok(Json(s.catalyst.server_logs(&who, id, &query).await?))
}

async fn list_access(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
) -> ApiResult<Json<Vec<ServerAccess>>> {
    Ok(Json(s.catalyst.list_access(&who, id).await?))
}

async fn grant_access(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<GrantAccess>,
) -> ApiResult<(StatusCode, Json<ServerAccess>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.grant_access(&who, id, input).await?)))
}

async fn revoke_access(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, user)): Ids<(ServerId, UserId)>,
) -> ApiResult<StatusCode> {
    s.catalyst.revoke_access(&who, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}
