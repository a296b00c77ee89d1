//! `GET /api/health`: unauthenticated liveness plus a database round trip.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Liveness and a database round trip; no credentials needed.
#[utoipa::path(get, path = "/api/health", tag = "health", security(()), responses((status = 200, description = "Healthy", body = Object)))]
async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.catalyst.store().list_locations().await?;
    Ok(Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "database": "ok"})))
}
