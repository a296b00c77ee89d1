//! `/api/client/servers/{server}/backups`: list, create, get, delete, over the facade's backups
//! (its limits, locks and storage rules apply).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use catalyst_core::Error;
use catalyst_core::id::BackupId;
use catalyst_core::model::{Backup, BackupStatus};
use serde_json::{Value, json};

use super::Target;
use crate::AppState;
use crate::pterodactyl::{PResult, item, no_content, time};

crate::pterodactyl::routes! {
    get "/api/client/servers/{server}/backups" => list, 200, "A server's backups";
    post "/api/client/servers/{server}/backups" => create, 200, "Start a backup (`{name?}` or no body)";
    get "/api/client/servers/{server}/backups/{backup}" => one, 200, "One backup";
    delete "/api/client/servers/{server}/backups/{backup}" => delete, 204, "Delete a backup";
}

/// A `backup` object.
fn backup_view(b: &Backup) -> Value {
    item(
        "backup",
        json!({"uuid": b.id, "name": b.name, "ignored_files": [], "checksum": b.checksum, "bytes": b.size_bytes,
               "is_successful": b.status == BackupStatus::Completed, "is_locked": b.locked,
               "created_at": time(b.created_at), "completed_at": b.completed_at.map(time)}),
    )
}

fn backup_id(raw: &str) -> PResult<BackupId> {
    raw.parse().map_err(|_| Error::not_found("backup").into())
}

async fn list(State(s): State<AppState>, Target { who, server }: Target) -> PResult<Json<Value>> {
    let backups = s.catalyst.list_backups(&who, server.id).await?;
    let data: Vec<Value> = backups.iter().map(backup_view).collect();
    let n = data.len();
    Ok(Json(json!({"object": "list", "data": data, "meta": {"backup_count": n, "pagination": {
        "total": n, "count": n, "per_page": n.max(1), "current_page": 1, "total_pages": 1, "links": {}}}})))
}

#[derive(Default, serde::Deserialize)]
struct NewBackup {
    #[serde(default)]
    name: Option<String>,
}

/// `{name?}`; pydactyl sends no body at all.
async fn create(State(s): State<AppState>, Target { who, server }: Target, body: Bytes) -> PResult<Response> {
    let input: NewBackup = if body.iter().all(u8::is_ascii_whitespace) {
        NewBackup::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::invalid(format!("The request body is invalid: {e}")))?
    };
    let name = input.name.filter(|n| !n.trim().is_empty());
    let backup = s.catalyst.create_backup(&who, server.id, name).await?;
    // Pterodactyl answers 200 here, not 201.
    Ok(Json(backup_view(&backup)).into_response())
}

async fn one(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Path((_, backup)): Path<(String, String)>,
) -> PResult<Json<Value>> {
    Ok(Json(backup_view(&s.catalyst.get_backup(&who, server.id, backup_id(&backup)?).await?)))
}

async fn delete(
    State(s): State<AppState>,
    Target { who, server }: Target,
    Path((_, backup)): Path<(String, String)>,
) -> PResult<Response> {
    s.catalyst.delete_backup(&who, server.id, backup_id(&backup)?).await?;
    Ok(no_content())
}
