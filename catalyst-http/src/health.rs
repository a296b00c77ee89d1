//! `GET /api/health`: unauthenticated liveness plus a database round trip.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.catalyst.store().list_locations().await?;
    Ok(Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "database": "ok"})))
}
