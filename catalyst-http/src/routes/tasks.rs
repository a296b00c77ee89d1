//! `/api/tasks`: scheduled tasks (cron, time zone, action, catch-up policy) and execute-now.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::{ServerId, TaskId};
use catalyst_core::model::{Paged, ScheduledTask};
use catalyst_runtime::control::{NewTask, TaskPatch};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::PageQuery;
use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids, Query};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(execute_task))
}

/// `?server_id=&offset=&limit=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TaskQuery {
    /// The server whose tasks to list (required unless you may read every task).
    #[serde(default)]
    server_id: Option<ServerId>,
    /// Rows to skip.
    #[serde(default)]
    offset: Option<u64>,
    /// Rows to return (1-500, default 50).
    #[serde(default)]
    limit: Option<u32>,
}

/// Tasks of a server, by next firing (`task.read`).
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(TaskQuery), responses((status = 200, body = Paged<ScheduledTask>)))]
async fn list_tasks(
    State(s): State<AppState>,
    Auth(who): Auth,
    Query(q): Query<TaskQuery>,
) -> ApiResult<Json<Paged<ScheduledTask>>> {
    let page = PageQuery { offset: q.offset, limit: q.limit }.page();
    Ok(Json(s.catalyst.list_tasks(&who, q.server_id, page).await?))
}

/// Create a task (`task.create` and the permission its action needs, on the server).
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = NewTask, responses((status = 201, body = ScheduledTask)))]
async fn create_task(
    State(s): State<AppState>,
    Auth(who): Auth,
    Body(input): Body<NewTask>,
) -> ApiResult<(StatusCode, Json<ScheduledTask>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.create_task(&who, input).await?)))
}

/// One task with its history: last and next run, run count, last result and error (`task.read`).
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", params(("id" = TaskId, Path)), responses((status = 200, body = ScheduledTask)))]
async fn get_task(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<TaskId>) -> ApiResult<Json<ScheduledTask>> {
    Ok(Json(s.catalyst.get_task(&who, id).await?))
}

/// Change, enable or disable a task (`task.update`).
#[utoipa::path(put, path = "/api/tasks/{id}", tag = "tasks", params(("id" = TaskId, Path)), request_body = TaskPatch, responses((status = 200, body = ScheduledTask)))]
async fn update_task(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<TaskId>,
    Body(patch): Body<TaskPatch>,
) -> ApiResult<Json<ScheduledTask>> {
    Ok(Json(s.catalyst.update_task(&who, id, patch).await?))
}

/// Delete a task (`task.delete`).
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks", params(("id" = TaskId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_task(State(s): State<AppState>, Auth(who): Auth, Ids(id): Ids<TaskId>) -> ApiResult<StatusCode> {
    s.catalyst.delete_task(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a task now, outside its schedule (`task.execute`); answers with its outcome.
#[utoipa::path(post, path = "/api/tasks/{id}/execute", tag = "tasks", params(("id" = TaskId, Path)), responses((status = 200, body = ScheduledTask)))]
async fn execute_task(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<TaskId>,
) -> ApiResult<Json<ScheduledTask>> {
    Ok(Json(s.catalyst.execute_task(&who, id).await?))
}
