//! `/api/auth`: register, login, me, refresh, logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use catalyst_core::model::User;
use catalyst_runtime::control::{LoginInput, LoginOutput, Me, RegisterInput};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, ClientIp};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
}

async fn register(State(s): State<AppState>, Body(input): Body<RegisterInput>) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(s.catalyst.register(None, input).await?)))
}

async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(input): Body<LoginInput>,
) -> ApiResult<Json<LoginOutput>> {
    Ok(Json(s.catalyst.login(input, ip).await?))
}

async fn me(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<Json<Me>> {
    Ok(Json(s.catalyst.me(&who).await?))
}

/// The refresh token.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshInput {
    refresh_token: String,
}

async fn refresh(State(s): State<AppState>, Body(input): Body<RefreshInput>) -> ApiResult<Json<LoginOutput>> {
    Ok(Json(s.catalyst.refresh(&input.refresh_token).await?))
}

async fn logout(State(s): State<AppState>, Auth(who): Auth) -> ApiResult<StatusCode> {
    s.catalyst.logout(&who).await?;
    Ok(StatusCode::NO_CONTENT)
}
