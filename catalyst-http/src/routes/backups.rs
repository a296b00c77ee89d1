//! `/api/servers/{id}/backups…`: take, list, restore, lock and delete backups.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use catalyst_core::id::{BackupId, ServerId};
use catalyst_core::model::Backup;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Ids};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_backups, create_backup))
        .routes(routes!(get_backup, delete_backup))
        .routes(routes!(restore_backup))
        .routes(routes!(lock_backup))
}

/// A backup to take.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewBackup {
    /// A name (default: the date and time).
    #[serde(default)]
    name: Option<String>,
}

/// Take a backup (`backup.create`): tar + zstd of the server directory, honouring its
/// `.catalystignore`; progress arrives as `backup_progress` events.
#[utoipa::path(post, path = "/api/servers/{id}/backups", tag = "backups", params(("id" = ServerId, Path)), request_body = NewBackup, responses((status = 202, body = Backup)))]
async fn create_backup(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
    Body(input): Body<NewBackup>,
) -> ApiResult<(StatusCode, Json<Backup>)> {
    Ok((StatusCode::ACCEPTED, Json(s.catalyst.create_backup(&who, id, input.name).await?)))
}

/// A server's backups, newest first (`backup.read`).
#[utoipa::path(get, path = "/api/servers/{id}/backups", tag = "backups", params(("id" = ServerId, Path)), responses((status = 200, body = Vec<Backup>)))]
async fn list_backups(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids(id): Ids<ServerId>,
) -> ApiResult<Json<Vec<Backup>>> {
    Ok(Json(s.catalyst.list_backups(&who, id).await?))
}

/// One backup (`backup.read`).
#[utoipa::path(get, path = "/api/servers/{id}/backups/{backup_id}", tag = "backups", params(("id" = ServerId, Path), ("backup_id" = BackupId, Path)), responses((status = 200, body = Backup)))]
async fn get_backup(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, backup)): Ids<(ServerId, BackupId)>,
) -> ApiResult<Json<Backup>> {
    Ok(Json(s.catalyst.get_backup(&who, id, backup).await?))
}

/// Delete a backup and its stored archive (`backup.delete`; refused while locked).
#[utoipa::path(delete, path = "/api/servers/{id}/backups/{backup_id}", tag = "backups", params(("id" = ServerId, Path), ("backup_id" = BackupId, Path)), responses((status = 204, description = "Deleted")))]
async fn delete_backup(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, backup)): Ids<(ServerId, BackupId)>,
) -> ApiResult<StatusCode> {
    s.catalyst.delete_backup(&who, id, backup).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore a backup (`backup.restore`): the server is stopped, the archive's checksum is
/// verified before anything is touched, the files are unpacked beside the old ones and swapped
/// in; a failure leaves the server's files as they were.
#[utoipa::path(post, path = "/api/servers/{id}/backups/{backup_id}/restore", tag = "backups", params(("id" = ServerId, Path), ("backup_id" = BackupId, Path)), responses((status = 202, body = Backup)))]
async fn restore_backup(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, backup)): Ids<(ServerId, BackupId)>,
) -> ApiResult<(StatusCode, Json<Backup>)> {
    Ok((StatusCode::ACCEPTED, Json(s.catalyst.restore_backup(&who, id, backup).await?)))
}

/// Lock state.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LockInput {
    /// Locked backups are neither deleted nor rotated out.
    locked: bool,
}

/// Lock or unlock a backup (`backup.delete`).
#[utoipa::path(post, path = "/api/servers/{id}/backups/{backup_id}/lock", tag = "backups", params(("id" = ServerId, Path), ("backup_id" = BackupId, Path)), request_body = LockInput, responses((status = 200, body = Backup)))]
async fn lock_backup(
    State(s): State<AppState>,
    Auth(who): Auth,
    Ids((id, backup)): Ids<(ServerId, BackupId)>,
    Body(input): Body<LockInput>,
) -> ApiResult<Json<Backup>> {
    Ok(Json(s.catalyst.lock_backup(&who, id, backup, input.locked).await?))
}
